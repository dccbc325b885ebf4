"""Whether two node-semver ranges admit a common version, without knowing which versions exist.

node-semver (and the `nodesemver` port) has no `intersects`, and the registry is not at hand
offline, so the question "can this manifest spec resolve into that bad range?" is answered from
the ranges alone. Each range is a union of comparator sets; each set is an interval of versions.
Two sets overlap when the intersection of their intervals holds a version that both admit:

- a release version (no pre-release tag) inside the intersection is admitted by both, and is
  returned as the example;
- a pre-release version is admitted by a set only when one of the set's own comparators carries a
  pre-release tag on the same `major.minor.patch` (npm's rule), so only those tuples are tried;
- what this cannot settle raises `Undecidable` ("cannot tell"): never a silent "no overlap".
"""

from __future__ import annotations

from dataclasses import dataclass

import nodesemver

_Bound = tuple[nodesemver.SemVer, bool] | None  # (version, inclusive); None: unbounded


@dataclass(frozen=True)
class Overlap:
    """Versions two ranges both admit: an example, and the major lines the overlap spans."""

    example: str
    low_major: int
    high_major: int | None  # None: no upper bound


class Undecidable(ValueError):
    """The ranges could not be compared (a shape this module does not read)."""


def _cmp(a: nodesemver.SemVer, b: nodesemver.SemVer) -> int:
    return a.compare(b)


def _interval(comparators: list) -> tuple[_Bound, _Bound]:
    low: _Bound = None
    high: _Bound = None
    for comp in comparators:
        if comp.semver is nodesemver.ANY:
            continue
        version, op = comp.semver, comp.operator
        if op in ("", "="):
            low = _max_low(low, (version, True))
            high = _min_high(high, (version, True))
        elif op in (">=", ">"):
            low = _max_low(low, (version, op == ">="))
        elif op in ("<=", "<"):
            high = _min_high(high, (version, op == "<="))
        else:
            raise Undecidable(f"comparator {comp.value!r}")
    return low, high


def _max_low(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    order = _cmp(a[0], b[0])
    if order != 0:
        return a if order > 0 else b
    return (a[0], a[1] and b[1])


def _min_high(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    order = _cmp(a[0], b[0])
    if order != 0:
        return a if order < 0 else b
    return (a[0], a[1] and b[1])


def _below(version: nodesemver.SemVer, high: _Bound) -> bool:
    if high is None:
        return True
    order = _cmp(version, high[0])
    return order < 0 or (order == 0 and high[1])


def _above(version: nodesemver.SemVer, low: _Bound) -> bool:
    if low is None:
        return True
    order = _cmp(version, low[0])
    return order > 0 or (order == 0 and low[1])


def _semver(text: str) -> nodesemver.SemVer:
    return nodesemver.make_semver(text, loose=True)


def _release_in(low: _Bound, high: _Bound) -> nodesemver.SemVer | None:
    """The lowest release version in the interval, if any."""
    if low is None:
        candidate = _semver("0.0.0")
    else:
        version, inclusive = low
        base = f"{version.major}.{version.minor}.{version.patch}"
        if version.prerelease:
            candidate = _semver(base)  # a release sorts after its own pre-releases
        elif inclusive:
            candidate = _semver(base)
        else:
            candidate = _semver(f"{version.major}.{version.minor}.{version.patch + 1}")
    return candidate if _above(candidate, low) and _below(candidate, high) else None


def _prerelease_tuples(comparators: list) -> set[tuple[int, int, int]]:
    return {
        (c.semver.major, c.semver.minor, c.semver.patch)
        for c in comparators
        if c.semver is not nodesemver.ANY and c.semver.prerelease
    }


def _prerelease_in(
    low: _Bound, high: _Bound, tuples: set[tuple[int, int, int]]
) -> nodesemver.SemVer | None:
    """A pre-release version of one of `tuples` inside the interval, if any."""
    for major, minor, patch in sorted(tuples):
        first = _semver(f"{major}.{minor}.{patch}-0")  # the lowest pre-release of the tuple
        candidates = [first]
        if low is not None and low[0].prerelease and _cmp(low[0], first) >= 0:
            tag = ".".join(str(part) for part in low[0].prerelease)
            bump = "" if low[1] else ".0"  # `x-rc.1.0` is the next tag after `x-rc.1`
            candidates.insert(0, _semver(f"{major}.{minor}.{patch}-{tag}{bump}"))
        release = _semver(f"{major}.{minor}.{patch}")
        for candidate in candidates:
            if (
                _above(candidate, low)
                and _below(candidate, high)
                and _cmp(candidate, release) < 0
                and (candidate.major, candidate.minor, candidate.patch) == (major, minor, patch)
            ):
                return candidate
    return None


def _high_major(high: _Bound, low_major: int) -> int | None:
    """The last major line below `high` (`<2.0.0` ends the 1.x line, unless all that is left are
    2.0.0 pre-releases), never below `low_major`."""
    if high is None:
        return None
    version, inclusive = high
    last = version.major
    if not inclusive and version.minor == 0 and version.patch == 0:
        last = version.major - 1
    return max(last, low_major)


def overlap(spec: str, bad_range: str) -> Overlap | None:
    """Versions both ranges admit (an example and the major lines), or None when there are none.

    Raises `Undecidable` when the ranges cannot be compared exactly.
    """
    try:
        left = nodesemver.make_range(spec, loose=True)
        right = nodesemver.make_range(bad_range, loose=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Undecidable(str(exc)) from None
    if left is None or right is None:
        raise Undecidable("not a range")
    found: list[Overlap] = []
    for a in left.set:
        for b in right.set:
            low_a, high_a = _interval(a)
            low_b, high_b = _interval(b)
            low, high = _max_low(low_a, low_b), _min_high(high_a, high_b)
            if low is not None and high is not None:
                order = _cmp(low[0], high[0])
                if order > 0 or (order == 0 and not (low[1] and high[1])):
                    continue  # empty interval
            example = _release_in(low, high)
            if example is None:
                example = _prerelease_in(low, high, _prerelease_tuples(a) & _prerelease_tuples(b))
            if example is None:
                continue
            if not (_satisfies(example.version, spec) and _satisfies(example.version, bad_range)):
                raise Undecidable(f"{example.version} should satisfy both and does not")
            low_major = low[0].major if low is not None else 0
            found.append(Overlap(example.version, low_major, _high_major(high, low_major)))
    if not found:
        return None
    highs = [o.high_major for o in found]
    return Overlap(
        example=found[0].example,
        low_major=min(o.low_major for o in found),
        high_major=None if None in highs else max(h for h in highs if h is not None),
    )


def range_majors(bad_range: str) -> tuple[int, int | None]:
    """The major lines a range spans: (lowest, highest or None when unbounded)."""
    try:
        parsed = nodesemver.make_range(bad_range, loose=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Undecidable(str(exc)) from None
    lows: list[int] = []
    highs: list[int | None] = []
    for comparators in parsed.set:
        low, high = _interval(comparators)
        low_major = low[0].major if low is not None else 0
        lows.append(low_major)
        highs.append(_high_major(high, low_major))
    if not lows:
        raise Undecidable(f"{bad_range!r} is empty")
    return min(lows), None if None in highs else max(h for h in highs if h is not None)


def _satisfies(version: str, rng: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, rng, loose=True))
    except (ValueError, TypeError, AttributeError):
        return False


def version_prefixes(bad_range: str, limit: int = 32) -> list[str] | None:
    """Text every version of the range starts with: `4.4.` for `>=4.4.2 <4.5.0`, `4.` and `5.`
    for `>=4.1.1 <6.0.0`. None when the range has no upper bound or spans more than `limit`
    lines (then any version may be one of it)."""
    try:
        parsed = nodesemver.make_range(bad_range, loose=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise Undecidable(str(exc)) from None
    prefixes: list[str] = []
    for comparators in parsed.set:
        low, high = _interval(comparators)
        if high is None:
            return None
        start = low[0] if low is not None else _semver("0.0.0")
        end = high[0]
        if start.major == end.major:
            if end.minor - start.minor >= limit:
                return None
            prefixes += [f"{start.major}.{m}." for m in range(start.minor, end.minor + 1)]
        elif end.major - start.major >= limit:
            return None
        else:
            prefixes += [f"{m}." for m in range(start.major, end.major + 1)]
    return sorted(set(prefixes))
