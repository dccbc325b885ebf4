"""A deterministic synthetic home for the scanner benchmark.

`python -m bench.make_home --dir DIR [--size full] [--seed 1]` writes `DIR/home` (repositories
under `home/src`, `home/work` and `home/code`, each with package.json, lockfiles and an installed
node_modules tree, plus `home/.npm/_cacache/index-v5`) and `DIR/expected.json` (the planted bad
versions, the traps and the list of projects). A stamp file lets a second run with the same seed
and size reuse the tree.

Every installed tree is valid for `npm ls`: packages are placed the way npm places them (hoisted
as high as possible without shadowing a version someone already resolved, nested otherwise), every
dependency is satisfied by the copy Node's resolution finds, and `package-lock.json` plus the
hidden `node_modules/.package-lock.json` describe exactly what is on disk.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 5
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"repos": 10, "packages": 5_000, "cache": 600, "universe": 1_500},
    "small": {"repos": 40, "packages": 50_000, "cache": 4_000, "universe": 4_000},
    "full": {"repos": 200, "packages": 300_000, "cache": 20_000, "universe": 9_000},
}
REGISTRY = "https://registry.npmjs.org"


def _words(text: str) -> list[str]:
    return text.split()


WORDS_A = _words(
    "react vue babel eslint webpack rollup jest lodash chalk debug express koa fastify next "
    "nuxt vite postcss sass less style css html json yaml toml graph query cache stream buffer "
    "path fs glob minimatch semver color ansi string array object date time uuid crypto hash "
    "http https net url mime form body cookie session auth token jwt oauth log pino winston "
    "test mocha chai sinon nock mock fake dom jsdom parse5 acorn esprima terser uglify source "
    "map core util tiny fast micro mini super ultra hyper is has get set to"
)
WORDS_B = _words(
    "core utils plugin loader parser types config helper cli runtime compat polyfill shim "
    "parse format stringify validate schema transform resolve traverse generator register "
    "preset env server client middleware router adapter bridge wrapper kit tools common shared "
    "base lite extra next legacy native browser node worker pool queue emitter events stream"
)
SCOPES = _words(
    "babel types jest vue aws-sdk smithy octokit sentry tanstack radix-ui emotion mui rollup "
    "vitest typescript-eslint swc esbuild"
)
ORGS = _words(
    "acme globex initech umbrella hooli piedpiper vandelay stark wayne tyrell cyberdyne "
    "soylent wonka oscorp aperture"
)
REPO_WORDS = _words(
    "api web app admin portal dashboard service worker gateway billing checkout search "
    "catalog inventory auth notify mailer reports analytics docs site cli sdk infra bot "
    "scheduler ingest export importer sync proxy mobile landing console studio"
)

LICENSE_TEXT = (
    "MIT License\n\nCopyright (c) {year} {name} contributors\n\n"
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    'software and associated documentation files (the "Software"), to deal in the Software '
    "without restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the Software.\n\n"
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.\n'
)
README_TEXT = (
    "# {name}\n\n{desc}\n\n## Install\n\n```sh\nnpm install {name}\n```\n\n## Usage\n\n"
    "```js\nconst lib = require('{name}');\nlib.run({{ verbose: true }});\n```\n\n"
    "## License\n\nMIT\n"
)
INDEX_JS = (
    "'use strict';\n\n{requires}\n"
    "function run(options) {{\n  const opts = Object.assign({{}}, options);\n"
    "  return {{ name: '{name}', version: '{version}', opts }};\n}}\n\n"
    "module.exports = {{ run }};\nmodule.exports.default = run;\n"
)
LIB_JS = (
    "'use strict';\n\n// {name}/lib/{part}\n"
    "exports.{part} = function {part}(input) {{\n"
    "  if (input == null) throw new TypeError('{part}: input is required');\n"
    "  return String(input).split('').reverse().join('');\n}};\n"
)
SRC_JS = (
    "import {{ run }} from '{dep}';\n{extra}\n"
    "export function handler(event) {{\n  const result = run({{ event }});\n"
    "  return {{ status: 200, body: JSON.stringify(result) }};\n}}\n"
)

Dep = tuple[str, str, str]  # (name, version, spec)

# Packages of the 2,915-version list (tests/fixtures/osv/compromised-versions.tsv), planted for the
# big-set scan (`bench.run`): bad versions in one project and the npm cache, good versions of the
# same packages as traps. None of them is bad for the axios playbook.
BIG_SET_BAD = {
    ("@ctrl/tinycolor", "4.1.1"),
    ("@ctrl/tinycolor", "4.1.2"),
    ("debug", "4.4.2"),
    ("chalk", "5.6.1"),
}
BIG_SET_PACKAGES = [
    ("@ctrl/tinycolor", "4.1.1"),
    ("@ctrl/tinycolor", "4.1.0"),
    ("debug", "4.4.2"),
    ("debug", "4.4.1"),
]
BIG_SET_CACHE = [("@ctrl/tinycolor", "4.1.2"), ("chalk", "5.6.1"), ("chalk", "5.6.0")]


@dataclass
class Universe:
    """Every package version the repositories can install, and what each depends on."""

    names: list[str]
    versions: dict[str, list[str]]
    deps: dict[tuple[str, str], list[Dep]]
    index: dict[tuple[str, str], int]
    closure: list[int]
    popular_direct: list[str]


@dataclass
class Counts:
    repos: int = 0
    projects: int = 0
    packages: int = 0
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    cache_entries: int = 0
    cache_buckets: int = 0
    bytes: int = 0


@dataclass
class Node:
    loc: str
    name: str
    version: str
    parent: str | None
    children: dict[str, str] = field(default_factory=dict)
    consumers: list[str] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)


class Writer:
    """Plain os-level writes, counted."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def mkdir(self, path: str) -> None:
        os.mkdir(path)
        self.counts.dirs += 1

    def makedirs(self, path: str) -> None:
        if not os.path.isdir(path):
            os.makedirs(path)
            self.counts.dirs += 1

    def put(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.counts.files += 1
        self.counts.bytes += len(data)

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, path)
        self.counts.symlinks += 1


def _integrity(name: str, version: str) -> str:
    digest = hashlib.sha512(f"{name}@{version}".encode()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def _tarball(name: str, version: str) -> str:
    return f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


# -- the package universe --------------------------------------------------------------------------
def build_universe(rng: random.Random, size: int) -> Universe:
    names: list[str] = []
    seen = {"axios", "axios-retry", "plain-crypto-js", "follow-redirects", "form-data"}
    while len(names) < size:
        a, b = rng.choice(WORDS_A), rng.choice(WORDS_B)
        roll = rng.random()
        if roll < 0.15:
            name = f"@{rng.choice(SCOPES)}/{a}-{b}"
        elif roll < 0.35:
            name = f"{a}-{b}-{rng.choice(WORDS_B)}"
        elif roll < 0.45:
            name = f"{a}{b}"
        else:
            name = f"{a}-{b}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    # the real http client and its dependencies sit among the popular low-level packages
    for special in ("proxy-from-env", "form-data", "follow-redirects", "axios"):
        names.insert(len(names) - 40, special)  # axios first, before its dependencies
    n = len(names)
    versions: dict[str, list[str]] = {}
    for name in names:
        majors = sorted(rng.sample(range(13), rng.choice((1, 1, 1, 1, 2, 2, 2, 3))))
        versions[name] = [f"{m}.{rng.randint(0, 20)}.{rng.randint(0, 15)}" for m in majors]
    versions["axios"] = ["0.30.3", "1.14.0"]
    versions["follow-redirects"] = ["1.15.9"]
    versions["form-data"] = ["4.0.4"]
    versions["proxy-from-env"] = ["1.1.0"]
    position = {name: i for i, name in enumerate(names)}

    def pick_dep(i: int) -> int | None:
        if rng.random() < 0.5:
            j = rng.randint(i + 1, min(n - 1, i + 1 + n // 6)) if i + 1 < n else None
        else:
            j = n - 1 - int(rng.expovariate(1 / (n * 0.07)))
        return j if j is not None and i < j < n else None

    deps: dict[tuple[str, str], list[Dep]] = {}
    for i, name in enumerate(names):
        frac = i / n
        for version in versions[name]:
            if name == "axios":
                wanted = [("follow-redirects", "1.15.9"), ("form-data", "4.0.4")]
                wanted.append(("proxy-from-env", "1.1.0"))
                deps[(name, version)] = [(d, v, f"^{v}") for d, v in wanted]
                continue
            if frac < 0.3:
                k = rng.randint(2, 6)
            elif frac < 0.7:
                k = rng.randint(0, 4)
            else:
                k = rng.choice((0, 0, 0, 1, 1, 2))
            chosen: dict[str, str] = {}
            for _ in range(k):
                j = pick_dep(i)
                if j is None or names[j] in chosen:
                    continue
                options = versions[names[j]]
                dv = options[-1] if rng.random() < 0.75 else rng.choice(options)
                chosen[names[j]] = dv
            if rng.random() < 0.04 and position["axios"] > i:
                chosen.setdefault("axios", rng.choice(versions["axios"]))
            deps[(name, version)] = [(d, v, f"^{v}") for d, v in sorted(chosen.items())]
    index = {pv: k for k, pv in enumerate(deps)}
    closure = [0] * len(index)
    for pv in reversed(list(deps)):
        bits = 1 << index[pv]
        for d, v, _ in deps[pv]:
            bits |= closure[index[(d, v)]]
        closure[index[pv]] = bits
    popular_direct = [nm for nm in names[: int(n * 0.55)] if nm != "axios"]
    return Universe(names, versions, deps, index, closure, popular_direct)


# -- npm-like placement ----------------------------------------------------------------------------
class Tree:
    """node_modules as npm lays it out: hoisted where that shadows nobody, nested otherwise."""

    def __init__(self, deps: dict[tuple[str, str], list[Dep]]) -> None:
        self.deps = deps
        self.nodes: dict[str, Node] = {"": Node("", "", "", None)}
        self.queue: deque[str] = deque()

    def _in_subtree(self, loc: str, top: str) -> bool:
        return top == "" or loc == top or loc.startswith(top + "/node_modules/")

    def resolve(self, requester: str, name: str, version: str) -> str:
        chain: list[str] = []
        loc: str | None = requester
        found = None
        while loc is not None:
            node = self.nodes[loc]
            found = node.children.get(name)
            if found is not None:
                break
            chain.append(loc)
            loc = node.parent
        if found is not None and self.nodes[found].version == version:
            self.nodes[found].consumers.append(requester)
            return found
        for top in reversed(chain):  # shallowest first
            if found is not None and any(
                self._in_subtree(c, top) for c in self.nodes[found].consumers
            ):
                continue
            return self._add(top, name, version, requester)
        raise RuntimeError(f"{requester} cannot place {name}@{version}")

    def _add(self, top: str, name: str, version: str, requester: str) -> str:
        loc = f"{top}/node_modules/{name}" if top else f"node_modules/{name}"
        self.nodes[top].children[name] = loc
        self.nodes[loc] = Node(loc, name, version, top, consumers=[requester])
        self.queue.append(loc)
        return loc

    def conflicts_at_root(self, name: str, version: str) -> bool:
        loc = self.nodes[""].children.get(name)
        return loc is not None and self.nodes[loc].version != version

    def add_direct(self, name: str, version: str) -> str:
        loc = self.resolve("", name, version)
        self.nodes[""].edges.append(loc)
        self.drain()
        return loc

    def drain(self) -> None:
        while self.queue:
            loc = self.queue.popleft()
            node = self.nodes[loc]
            for dname, dversion, _ in self.deps[(node.name, node.version)]:
                node.edges.append(self.resolve(loc, dname, dversion))

    def packages(self) -> list[Node]:
        return [self.nodes[k] for k in sorted(self.nodes) if k]


# -- a project -------------------------------------------------------------------------------------
@dataclass
class Project:
    rel: str  # relative to home
    name: str
    kind: str = "npm"  # npm | yarn | pnpm
    target: int = 0
    direct: list[Dep] = field(default_factory=list)
    dev: list[Dep] = field(default_factory=list)
    forced: list[Dep] = field(default_factory=list)
    workspaces: int = 0
    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    is_repo: bool = True


class Generator:
    def __init__(self, home: Path, seed: int, size: str) -> None:
        self.home = home
        self.seed = seed
        self.size = size
        self.spec = SIZES[size]
        self.rng = random.Random(seed)
        self.counts = Counts()
        self.w = Writer(self.counts)
        self.universe = build_universe(self.rng, self.spec["universe"])
        self.deps = dict(self.universe.deps)
        self.deps[("@acme/http-kit", "2.3.0")] = [("axios", "1.14.1", "1.14.1")]
        bad_axios_deps = [*self.deps[("axios", "1.14.0")], ("plain-crypto-js", "4.2.1", "^4.2.1")]
        self.deps[("axios", "1.14.1")] = bad_axios_deps
        self.deps[("axios", "0.30.4")] = bad_axios_deps
        self.deps[("axios", "1.14.10")] = list(self.deps[("axios", "1.14.0")])
        self.deps[("plain-crypto-js", "4.2.1")] = []
        self.deps[("axios-retry", "1.14.1")] = [("is-retry-allowed", "2.2.0", "^2.2.0")]
        self.deps[("is-retry-allowed", "2.2.0")] = []
        # packages of the 2,915-version list (tests/playbooks/shai-hulud-list.yaml): bad ones in p7,
        # good versions of the same packages in p8; none of them is bad for the axios playbook
        for name, version in BIG_SET_PACKAGES:
            self.deps[(name, version)] = []
        self.deps[("@acme/log-kit", "1.2.0")] = [("debug", "4.4.2", "^4.4.0")]
        self.blobs: dict[tuple[str, str, str], bytes] = {}
        self.expected: dict = {"compromised": [], "at_risk": [], "traps": [], "projects": []}
        # what the 2,915-version playbook must report beyond the axios plants it shares
        self.expected["big_set"] = {"compromised": [], "at_risk": [], "traps": []}

    # -- layout of the home
    def plan(self) -> list[Project]:
        rng = self.rng
        n = self.spec["repos"]
        raw = [min(max(rng.lognormvariate(0, 0.8), 0.05), 5.0) for _ in range(n)]
        scale = self.spec["packages"] / sum(raw)
        used: set[str] = set()
        projects: list[Project] = []
        for i in range(n):
            org = rng.choice(ORGS)
            repo = f"{rng.choice(REPO_WORDS)}-{rng.choice(REPO_WORDS)}"
            while f"{org}/{repo}" in used:
                repo = f"{repo}-{rng.randint(2, 99)}"
            used.add(f"{org}/{repo}")
            roll = rng.random()
            if roll < 0.7:
                rel = f"src/{org}/{repo}"
            elif roll < 0.85:
                rel = f"src/{org}/{rng.choice(('team-a', 'platform', 'legacy'))}/{repo}"
            elif roll < 0.95:
                rel = f"work/clients/{org}/{repo}"
            else:
                rel = f"code/archive/{org}/{rng.choice(('2023', '2024'))}/{repo}"
            project = Project(rel=rel, name=f"@{org}/{repo}", target=max(40, int(raw[i] * scale)))
            if rng.random() < 0.04:
                project.workspaces = rng.randint(2, 4)
            projects.append(project)
        # a few nested example projects inside repositories (projects, not repositories)
        for i in range(0, n, max(1, n // 8)):
            host = projects[i]
            projects.append(
                Project(
                    rel=f"{host.rel}/examples/demo",
                    name=f"{host.name}-demo",
                    target=rng.randint(40, 200),
                    is_repo=False,
                )
            )
        self._plant(projects)
        return projects

    def _plant(self, projects: list[Project]) -> None:
        repos = [p for p in projects if p.is_repo and not p.workspaces]
        step = max(1, len(repos) // 7)
        if len(repos) <= step * 7 + 1:
            raise SystemExit(f"seed {self.seed}: too few plain repositories to plant in")
        p1, p2, p3, p4, p5, p6, p7, p8 = (repos[step * k + 1] for k in range(8))
        # 1. axios 1.14.1 nested under a library; plain-crypto-js claims 4.2.0 (malware rewrote it)
        p1.forced = [("axios", "1.14.0", "1.14.0"), ("@acme/http-kit", "2.3.0", "^2.3.0")]
        p1.claims[("plain-crypto-js", "4.2.1")] = "4.2.0"
        # 2. a direct axios 0.30.4 through ^0.30.0
        p2.forced = [("axios", "0.30.4", "^0.30.0")]
        # 3. yarn v1 with axios 1.14.1 through ^1.14.1
        p3.kind = "yarn"
        p3.forced = [("axios", "1.14.1", "^1.14.1")]
        # 4. pnpm with axios 1.14.1, a small project
        p4.kind = "pnpm"
        p4.target = min(p4.target, 150)
        p4.forced = [("axios", "1.14.1", "1.14.1")]
        # 5., 6. traps: another package's version equal to a bad one; a version that only
        # starts like a bad one
        p5.forced = [("axios-retry", "1.14.1", "1.14.1")]
        p6.forced = [("axios", "1.14.10", "1.14.10")]
        # 7. the big set: a scoped bad package direct through a range, an unscoped one transitive
        p7.forced = [("@ctrl/tinycolor", "4.1.1", "^4.1.0"), ("@acme/log-kit", "1.2.0", "^1.2.0")]
        # 8. its trap: good versions of the same packages, pinned exactly
        p8.forced = [("@ctrl/tinycolor", "4.1.0", "4.1.0"), ("debug", "4.4.1", "4.4.1")]
        self.planted = {
            "p1": p1,
            "p2": p2,
            "p3": p3,
            "p4": p4,
            "p5": p5,
            "p6": p6,
            "p7": p7,
            "p8": p8,
        }

    # -- contents
    def _blob(self, name: str, version: str, what: str) -> bytes:
        key = (name, version, what)
        blob = self.blobs.get(key)
        if blob is not None:
            return blob
        desc = f"{name.split('/')[-1].replace('-', ' ').capitalize()} for Node.js."
        if what == "index":
            requires = "".join(
                f"const dep{k} = require('{d}');\n"
                for k, (d, _, _) in enumerate(self.deps[(name, version)][:4])
            )
            blob = INDEX_JS.format(requires=requires, name=name, version=version).encode()
        elif what == "readme":
            blob = README_TEXT.format(name=name, desc=desc).encode()
        elif what == "license":
            blob = LICENSE_TEXT.format(year=2018 + len(name) % 7, name=name).encode()
        else:
            blob = LIB_JS.format(name=name, part=what).encode()
        if len(self.blobs) < 400_000:
            self.blobs[key] = blob
        return blob

    def _manifest(self, name: str, version: str, claimed: str | None) -> bytes:
        deps = self.deps[(name, version)]
        data: dict = {
            "name": name,
            "version": claimed or version,
            "description": f"{name.split('/')[-1].replace('-', ' ')} utilities",
            "main": "index.js",
            "license": "MIT",
            "repository": {"type": "git", "url": f"git+https://github.com/example/{name}.git"},
        }
        if deps:
            data["dependencies"] = {d: spec for d, _, spec in deps}
        return (json.dumps(data, indent=2) + "\n").encode()

    def _write_package(self, path: str, name: str, version: str, claimed: str | None) -> None:
        w = self.w
        w.mkdir(path)
        w.put(f"{path}/package.json", self._manifest(name, version, claimed))
        w.put(f"{path}/index.js", self._blob(name, version, "index"))
        h = hashlib.blake2b(f"{name}@{version}".encode(), digest_size=4).digest()
        if h[0] % 10 < 8:
            w.put(f"{path}/README.md", self._blob(name, version, "readme"))
        if h[1] % 10 < 7:
            w.put(f"{path}/LICENSE", self._blob(name, version, "license"))
        if h[2] % 10 < 6:
            w.mkdir(f"{path}/lib")
            for part in ("parse", "format", "compat")[: 1 + h[3] % 3]:
                w.put(f"{path}/lib/{part}.js", self._blob(name, version, part))
        self.counts.packages += 1

    # -- install
    def _choose_direct(self, tree: Tree, project: Project) -> None:
        rng = self.rng
        u = self.universe
        for name, version, _ in project.forced:
            tree.add_direct(name, version)
        direct = list(project.forced)
        budget = project.target
        tries = 0
        while len(tree.nodes) - 1 < budget and tries < 4000:
            tries += 1
            name = rng.choice(u.popular_direct)
            if any(name == d[0] for d in direct):
                continue
            version = u.versions[name][-1]
            size = u.closure[u.index[(name, version)]].bit_count()
            remaining = budget - (len(tree.nodes) - 1)
            if size > remaining * 1.3 + 30 or tree.conflicts_at_root(name, version):
                continue
            tree.add_direct(name, version)
            direct.append((name, version, f"^{version}"))
        for dep in direct:
            is_dev = dep not in project.forced and rng.random() < 0.3
            (project.dev if is_dev else project.direct).append(dep)

    def _dev_flags(self, tree: Tree, project: Project) -> set[str]:
        prod_names = {d[0] for d in project.direct}
        stack = [tree.nodes[""].children[n] for n in prod_names]
        prod: set[str] = set()
        while stack:
            loc = stack.pop()
            if loc in prod:
                continue
            prod.add(loc)
            stack.extend(tree.nodes[loc].edges)
        return {k for k in tree.nodes if k and k not in prod}

    def _lock_entries(self, tree: Tree, dev: set[str]) -> dict[str, dict]:
        entries: dict[str, dict] = {}
        for node in tree.packages():
            entry: dict = {
                "version": node.version,
                "resolved": _tarball(node.name, node.version),
                "integrity": _integrity(node.name, node.version),
            }
            if node.loc in dev:
                entry["dev"] = True
            entry["license"] = "MIT"
            deps = self.deps[(node.name, node.version)]
            if deps:
                entry["dependencies"] = {d: spec for d, _, spec in deps}
            entries[node.loc] = entry
        return entries

    def _project_manifest(self, project: Project, ws_names: list[str]) -> dict:
        data: dict = {
            "name": project.name,
            "version": "1.0.0",
            "private": True,
            "scripts": {"build": "node build.js", "test": "node --test"},
        }
        if ws_names:
            data["workspaces"] = ["packages/*"]
        if project.direct:
            data["dependencies"] = {d: s for d, _, s in sorted(project.direct)}
        if project.dev:
            data["devDependencies"] = {d: s for d, _, s in sorted(project.dev)}
        return data

    def make_project(self, project: Project) -> None:
        w = self.w
        base = str(self.home / project.rel)
        w.makedirs(base)
        tree = Tree(self.deps)
        self._choose_direct(tree, project)
        if project.is_repo:
            self._repo_extras(base, project)
        ws_names: list[str] = []
        ws_entries: dict[str, dict] = {}
        if project.workspaces:
            top = [n for n in tree.packages() if n.parent == ""]
            w.mkdir(f"{base}/packages")
            for k in range(project.workspaces):
                ws = f"{project.name}-{('core', 'web', 'api', 'cli')[k]}"
                folder = f"packages/{ws.split('-')[-1]}"
                picks = self.rng.sample(top, min(len(top), self.rng.randint(2, 6)))
                wdeps = {n.name: f"^{n.version}" for n in picks}
                manifest = {"name": ws, "version": "0.1.0", "dependencies": wdeps}
                w.mkdir(f"{base}/{folder}")
                w.put(f"{base}/{folder}/package.json", _json(manifest))
                w.put(f"{base}/{folder}/index.js", b"module.exports = {};\n")
                ws_names.append(ws)
                ws_entries[folder] = {"name": ws, "version": "0.1.0", "dependencies": wdeps}
                ws_entries[f"node_modules/{ws}"] = {"resolved": folder, "link": True}
        manifest = self._project_manifest(project, ws_names)
        w.put(f"{base}/package.json", _json(manifest))
        if project.kind == "pnpm":
            self._install_pnpm(base, project, tree, manifest)
        else:
            self._install_npm(base, project, tree, manifest, ws_names, ws_entries)
        self.counts.projects += 1
        self.expected["projects"].append(
            {"path": project.rel, "kind": project.kind, "packages": len(tree.nodes) - 1}
        )

    def _install_npm(
        self,
        base: str,
        project: Project,
        tree: Tree,
        manifest: dict,
        ws_names: list[str],
        ws_entries: dict[str, dict],
    ) -> None:
        w = self.w
        nm = f"{base}/node_modules"
        w.mkdir(nm)
        for node in tree.packages():
            path = f"{base}/{node.loc}"
            parent = path.rsplit("/", 1)[0]
            if node.name.startswith("@"):
                parent = parent.rsplit("/", 1)[0]
            if not os.path.isdir(parent):
                w.mkdir(parent)
            if node.name.startswith("@"):
                w.makedirs(path.rsplit("/", 1)[0])
            claimed = project.claims.get((node.name, node.version))
            self._write_package(path, node.name, node.version, claimed)
        for ws in ws_names:
            link = f"{nm}/{ws}"
            w.makedirs(os.path.dirname(link))
            rel = os.path.relpath(f"{base}/packages/{ws.split('-')[-1]}", os.path.dirname(link))
            w.symlink(rel, link)
        dev = self._dev_flags(tree, project)
        entries = self._lock_entries(tree, dev)
        entries.update(ws_entries)
        entries = dict(sorted(entries.items()))
        if project.kind == "yarn":
            w.put(f"{base}/yarn.lock", self._yarn_lock(tree, project))
            w.put(f"{nm}/.yarn-integrity", _json({"systemParams": "linux-x64-115", "flags": []}))
            return
        root = {"name": manifest["name"], "version": manifest["version"]}
        for key in ("workspaces", "dependencies", "devDependencies"):
            if key in manifest:
                root[key] = manifest[key]
        lock = {
            "name": manifest["name"],
            "version": manifest["version"],
            "lockfileVersion": 3,
            "requires": True,
            "packages": {"": root, **entries},
        }
        w.put(f"{base}/package-lock.json", _json(lock))
        hidden = {k: v for k, v in lock.items() if k != "packages"}
        hidden["packages"] = entries
        w.put(f"{nm}/.package-lock.json", _json(hidden))
        later = time.time() + 60  # npm trusts the hidden lockfile only when it is the newest
        os.utime(f"{nm}/.package-lock.json", (later, later))

    def _yarn_lock(self, tree: Tree, project: Project) -> bytes:
        specs: dict[tuple[str, str], set[str]] = {}
        for node in tree.packages():
            specs.setdefault((node.name, node.version), set())
        for name, version, spec in [*project.direct, *project.dev]:
            specs[(name, version)].add(spec)
        for node in tree.packages():
            for d, v, spec in self.deps[(node.name, node.version)]:
                specs[(d, v)].add(spec)
        out = ["# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n"]
        out.append("# yarn lockfile v1\n\n")
        for (name, version), used in sorted(specs.items()):
            keys = ", ".join(_yarn_key(f"{name}@{s}") for s in sorted(used or {f"^{version}"}))
            sha1 = hashlib.sha1(f"{name}@{version}".encode()).hexdigest()
            out.append(f'\n{keys}:\n  version "{version}"\n')
            out.append(f'  resolved "{_tarball(name, version)}#{sha1}"\n')
            out.append(f"  integrity {_integrity(name, version)}\n")
            deps = self.deps[(name, version)]
            if deps:
                out.append("  dependencies:\n")
                out.extend(f'    {_yarn_key(d)} "{spec}"\n' for d, _, spec in deps)
        return "".join(out).encode()

    def _install_pnpm(self, base: str, project: Project, tree: Tree, manifest: dict) -> None:
        w = self.w
        nm = f"{base}/node_modules"
        store = f"{nm}/.pnpm"
        w.mkdir(nm)
        w.mkdir(store)
        unique = sorted({(n.name, n.version) for n in tree.packages()})

        def folder(name: str, version: str) -> str:
            return f"{name.replace('/', '+')}@{version}"

        for name, version in unique:
            inner = f"{store}/{folder(name, version)}/node_modules"
            w.makedirs(inner)
            if name.startswith("@"):
                w.makedirs(f"{inner}/{name.split('/')[0]}")
            self._write_package(f"{inner}/{name}", name, version, None)
            for d, v, _ in self.deps[(name, version)]:
                link = f"{inner}/{d}"
                w.makedirs(os.path.dirname(link))
                target = f"{store}/{folder(d, v)}/node_modules/{d}"
                w.symlink(os.path.relpath(target, os.path.dirname(link)), link)
        for name, version, _ in [*project.direct, *project.dev]:
            link = f"{nm}/{name}"
            w.makedirs(os.path.dirname(link))
            target = f"{store}/{folder(name, version)}/node_modules/{name}"
            w.symlink(os.path.relpath(target, os.path.dirname(link)), link)
        lines = ["lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n"]
        lines.append("  excludeLinksFromLockfile: false\n\nimporters:\n\n  .:\n")
        for group, deps in (("dependencies", project.direct), ("devDependencies", project.dev)):
            if deps:
                lines.append(f"    {group}:\n")
                for name, version, spec in sorted(deps):
                    lines.append(f"      {_yaml_key(name)}:\n        specifier: {_yq(spec)}\n")
                    lines.append(f"        version: {version}\n")
        lines.append("\npackages:\n")
        for name, version in unique:
            lines.append(f"\n  {_yaml_key(f'{name}@{version}')}:\n")
            lines.append(f"    resolution: {{integrity: {_integrity(name, version)}}}\n")
        lines.append("\nsnapshots:\n")
        for name, version in unique:
            deps = self.deps[(name, version)]
            key = _yaml_key(f"{name}@{version}")
            if not deps:
                lines.append(f"\n  {key}: {{}}\n")
                continue
            lines.append(f"\n  {key}:\n    dependencies:\n")
            lines.extend(f"      {_yaml_key(d)}: {v}\n" for d, v, _ in deps)
        w.put(f"{base}/pnpm-lock.yaml", "".join(lines).encode())
        w.put(f"{nm}/.modules.yaml", b"layoutVersion: 5\nnodeLinker: isolated\n")

    def _repo_extras(self, base: str, project: Project) -> None:
        w, rng = self.w, self.rng
        git = f"{base}/.git"
        w.mkdir(git)
        w.put(f"{git}/HEAD", b"ref: refs/heads/main\n")
        w.put(f"{git}/config", b"[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
        w.put(f"{git}/description", b"Unnamed repository\n")
        for sub in ("objects", "refs", "refs/heads", "info"):
            w.mkdir(f"{git}/{sub}")
        w.put(f"{base}/README.md", f"# {project.name}\n\nInternal service.\n".encode())
        w.put(f"{base}/.gitignore", b"node_modules/\ndist/\n.env\n")
        w.mkdir(f"{base}/src")
        for k in range(rng.randint(5, 30)):
            dep = rng.choice(self.universe.popular_direct)
            extra = "import axios from 'axios';\n" if rng.random() < 0.1 else ""
            w.put(f"{base}/src/module{k}.js", SRC_JS.format(dep=dep, extra=extra).encode())

    # -- the npm cache
    def make_cache(self) -> None:
        rng = self.rng
        index = self.home / ".npm" / "_cacache" / "index-v5"
        total = self.spec["cache"]
        pvs = list(self.universe.deps)
        keys: list[tuple[str, bool]] = []
        planted = [
            ("axios", "1.14.1"),
            ("plain-crypto-js", "4.2.1"),
            ("axios", "0.30.4"),
            ("axios-retry", "1.14.1"),
            ("axios", "1.14.10"),
            ("axios", "1.14.0"),
            *BIG_SET_CACHE,
        ]
        for name, version in planted:
            keys.append((f"make-fetch-happen:request-cache:{_tarball(name, version)}", True))
        deleted = (
            "make-fetch-happen:request-cache:http://registry.local:4873/axios/-/axios-1.14.1.tgz"
        )
        keys.append((deleted, False))
        seen = {k for k, _ in keys}
        while len(keys) < total:
            name, version = rng.choice(pvs)
            if rng.random() < 0.65:
                key = f"make-fetch-happen:request-cache:{_tarball(name, version)}"
            else:
                key = f"make-fetch-happen:request-cache:{REGISTRY}/{name.replace('/', '%2f')}"
            if key not in seen:
                seen.add(key)
                keys.append((key, True))
        buckets: set[str] = set()
        for number, (key, live) in enumerate(keys):
            digest = hashlib.sha256(key.encode()).hexdigest()
            folder = index / digest[:2] / digest[2:4]
            bucket = str(folder / digest[4:])
            lines = [self._cache_line(key, number, True)]
            if not live or rng.random() < 0.05:  # re-fetched, or later removed by `npm cache clean`
                lines.append(self._cache_line(key, number + 1, live))
            self.w.makedirs(str(folder))
            self.w.put(bucket, "".join(lines).encode())
            buckets.add(bucket)
            self.counts.cache_entries += 1
        self.counts.cache_buckets = len(buckets)
        for name, version in planted[:3]:
            key = f"make-fetch-happen:request-cache:{_tarball(name, version)}"
            digest = hashlib.sha256(key.encode()).hexdigest()
            path = f".npm/_cacache/index-v5/{digest[:2]}/{digest[2:4]}/{digest[4:]}"
            self.expected["compromised"].append(
                {"kind": "cache", "package": name, "version": version, "path": path}
            )
        big = self.expected["big_set"]
        for name, version in BIG_SET_CACHE:
            key = f"make-fetch-happen:request-cache:{_tarball(name, version)}"
            digest = hashlib.sha256(key.encode()).hexdigest()
            path = f".npm/_cacache/index-v5/{digest[:2]}/{digest[2:4]}/{digest[4:]}"
            if (name, version) in BIG_SET_BAD:
                big["compromised"].append(_want("cache", name, version, path))
            else:
                big["traps"].append({"what": f"good {name}@{version} cached", "path": path})
        digest = hashlib.sha256(deleted.encode()).hexdigest()
        self.expected["traps"].append(
            {
                "what": "cache entry removed by npm cache clean",
                "path": f".npm/_cacache/index-v5/{digest[:2]}/{digest[2:4]}/{digest[4:]}",
            }
        )

    def _cache_line(self, key: str, number: int, live: bool) -> str:
        entry = {
            "key": key,
            "integrity": _integrity(key, "x") if live else None,
            "time": 1_700_000_000_000 + number * 1000,
            "size": 1000 + number % 50_000 if live else 0,
            "metadata": {"url": key.split(":", 2)[-1], "reqHeaders": {}, "resHeaders": {}},
        }
        body = json.dumps(entry, separators=(",", ":"))
        return f"\n{hashlib.sha1(body.encode()).hexdigest()}\t{body}"

    def _home_extras(self) -> None:
        w = self.w
        for folder in ("Documents", "Downloads", ".config/git", ".ssh"):
            w.makedirs(str(self.home / folder))
        w.put(str(self.home / ".bashrc"), b"export PATH=$HOME/.local/bin:$PATH\n")
        w.put(str(self.home / ".config/git/config"), b"[user]\n\tname = Bench\n")
        w.put(str(self.home / "Documents/notes.md"), b"# notes\n\nupgrade axios next sprint\n")

    def _record_expected(self) -> None:
        p = self.planted
        exp = self.expected
        nm = "node_modules"
        p1, p2, p3, p4 = p["p1"].rel, p["p2"].rel, p["p3"].rel, p["p4"].rel
        for rel, lock in ((p1, "package-lock.json"), (p1, f"{nm}/.package-lock.json")):
            exp["compromised"].append(_want("lockfile", "axios", "1.14.1", f"{rel}/{lock}"))
            exp["compromised"].append(
                _want("lockfile", "plain-crypto-js", "4.2.1", f"{rel}/{lock}")
            )
        exp["compromised"] += [
            _want("installed", "axios", "1.14.1", f"{p1}/{nm}/@acme/http-kit/{nm}/axios"),
            _want("installed", "plain-crypto-js", "4.2.0", f"{p1}/{nm}/plain-crypto-js"),
            _want("lockfile", "axios", "0.30.4", f"{p2}/package-lock.json"),
            _want("lockfile", "axios", "0.30.4", f"{p2}/{nm}/.package-lock.json"),
            _want("installed", "axios", "0.30.4", f"{p2}/{nm}/axios"),
            _want("installed", "plain-crypto-js", "4.2.1", f"{p2}/{nm}/plain-crypto-js"),
            _want("lockfile", "axios", "1.14.1", f"{p3}/yarn.lock"),
            _want("lockfile", "plain-crypto-js", "4.2.1", f"{p3}/yarn.lock"),
            _want("installed", "axios", "1.14.1", f"{p3}/{nm}/axios"),
            _want("lockfile", "axios", "1.14.1", f"{p4}/pnpm-lock.yaml"),
            _want("installed", "axios", "1.14.1", f"{p4}/{nm}/.pnpm/axios@1.14.1/{nm}/axios"),
            _want(
                "installed",
                "plain-crypto-js",
                "4.2.1",
                f"{p4}/{nm}/.pnpm/plain-crypto-js@4.2.1/{nm}/plain-crypto-js",
            ),
        ]
        exp["at_risk"] = [
            {"kind": "manifest", "package": "axios", "path": f"{p2}/package.json"},
            {"kind": "manifest", "package": "axios", "path": f"{p3}/package.json"},
            {"kind": "manifest", "package": "axios", "path": f"{p4}/package.json"},
        ]
        exp["traps"] += [
            {"what": "axios-retry@1.14.1 installed and locked", "path": p["p5"].rel},
            {"what": "axios@1.14.10 installed, locked and pinned", "path": p["p6"].rel},
        ]
        exp["planted_projects"] = [p[k].rel for k in ("p1", "p2", "p3", "p4")]
        p7, p8 = p["p7"].rel, p["p8"].rel
        big = exp["big_set"]
        for lock in ("package-lock.json", f"{nm}/.package-lock.json"):
            big["compromised"] += [
                _want("lockfile", "@ctrl/tinycolor", "4.1.1", f"{p7}/{lock}"),
                _want("lockfile", "debug", "4.4.2", f"{p7}/{lock}"),
            ]
        big["compromised"] += [
            _want("installed", "@ctrl/tinycolor", "4.1.1", f"{p7}/{nm}/@ctrl/tinycolor"),
            _want("installed", "debug", "4.4.2", f"{p7}/{nm}/debug"),
        ]
        big["at_risk"] = [
            {"kind": "manifest", "package": "@ctrl/tinycolor", "path": f"{p7}/package.json"}
        ]
        big["traps"].append(
            {"what": "good @ctrl/tinycolor and debug installed and locked", "path": p8}
        )
        big["planted_projects"] = [p7]

    def run(self) -> Counts:
        projects = self.plan()
        self.home.mkdir(parents=True)
        self._home_extras()
        for project in projects:
            self.make_project(project)
            self.counts.repos += project.is_repo
        self.make_cache()
        self._record_expected()
        return self.counts


def _want(kind: str, package: str, version: str, path: str) -> dict:
    return {"kind": kind, "package": package, "version": version, "path": path}


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def _yarn_key(text: str) -> str:
    return f'"{text}"' if text.startswith("@") or " " in text else text


def _yaml_key(text: str) -> str:
    return f"'{text}'" if text.startswith("@") else text


def _yq(text: str) -> str:
    return f"'{text}'" if text[:1] in "^~*>" else text


def ensure_home(base: Path, seed: int = 1, size: str = "full", *, quiet: bool = False) -> dict:
    """Generate `base/home` (or reuse it when its stamp matches); returns the stamp."""
    stamp_path = base / "home.stamp.json"
    want = {"generator": GENERATOR_VERSION, "seed": seed, "size": size}
    if stamp_path.is_file() and (base / "home").is_dir():
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in want} == want:
            if not quiet:
                print(f"reusing {base / 'home'} ({_summary(stamp['counts'])})")
            return stamp
    for stale in (base / "home", stamp_path, base / "expected.json"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    gen = Generator(base / "home", seed, size)
    counts = gen.run()
    elapsed = time.perf_counter() - started
    (base / "expected.json").write_text(json.dumps(gen.expected, indent=2) + "\n")
    stamp = {**want, "counts": counts.__dict__, "seconds": round(elapsed, 1)}
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    if not quiet:
        print(f"generated {base / 'home'} in {elapsed:.0f} s ({_summary(counts.__dict__)})")
    return stamp


def _summary(c: dict) -> str:
    return (
        f"{c['repos']} repos, {c['projects']} projects, {c['packages']:,} installed packages, "
        f"{c['files']:,} files, {c['dirs']:,} dirs, {c['symlinks']} symlinks, "
        f"{c['bytes'] / 1e6:.0f} MB, {c['cache_entries']:,} cache entries "
        f"in {c['cache_buckets']:,} buckets"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="where to put home/")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    ensure_home(args.dir.resolve(), args.seed, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
