"""Format-preserving package.json edits: the formatting matrix and malformed files."""

from __future__ import annotations

import pytest

from steps.npm.edit import ManifestError, PackageJson

BASE = (
    '{\n%(i)s"name": "a",\n%(i)s"dependencies": {\n'
    '%(i)s%(i)s"axios": "^1.14.0",\n%(i)s%(i)s"b": "1"\n%(i)s}\n}'
)


def variants():
    for label, indent in (("2-space", "  "), ("4-space", "    "), ("tab", "\t")):
        yield label, (BASE % {"i": indent} + "\n").encode()
    yield "crlf", (BASE % {"i": "  "} + "\n").replace("\n", "\r\n").encode()
    yield "no-final-newline", (BASE % {"i": "  "}).encode()
    yield "bom", ("\ufeff" + BASE % {"i": "  "} + "\n").encode()


@pytest.mark.parametrize(("label", "data"), list(variants()), ids=[v[0] for v in variants()])
def test_only_the_spec_changes(label, data):
    doc = PackageJson("package.json", data)
    doc.set_string(("dependencies", "axios"), "1.14.0")
    out = doc.dump()
    before, after = data.split(b"\n"), out.split(b"\n")
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1] == changed[0][0].replace(b"^1.14.0", b"1.14.0")


@pytest.mark.parametrize(("label", "data"), list(variants()), ids=[v[0] for v in variants()])
def test_inserted_overrides_follow_the_file_style(label, data):
    doc = PackageJson("package.json", data)
    doc.set_key(("overrides",), "axios@1.14.1", "1.14.0")
    out = doc.dump()
    assert out.startswith(b"\xef\xbb\xbf") == (label == "bom")
    assert out.endswith(b"}") == (label == "no-final-newline")
    text = out.decode("utf-8-sig")
    if label == "crlf":
        assert "\n" not in text.replace("\r\n", "")
    indent = {"4-space": "    ", "tab": "\t"}.get(label, "  ")
    nl = "\r\n" if label == "crlf" else "\n"
    assert f'{indent}"overrides": {{{nl}{indent * 2}"axios@1.14.1": "1.14.0"{nl}{indent}}}' in text
    # everything before the insertion point is untouched
    head = data.decode("utf-8-sig").rsplit("}", 1)[0].rstrip()
    assert text.startswith(head)
    doc2 = PackageJson("package.json", out)
    assert doc2.data["overrides"] == {"axios@1.14.1": "1.14.0"}


def test_existing_and_nested_objects():
    doc = PackageJson("p", b'{\n  "pnpm": {},\n  "resolutions": {"x": "1"}\n}\n')
    doc.set_key(("pnpm", "overrides"), "axios@1.14.1", "1.14.0")
    doc.set_key(("resolutions",), "axios", "1.14.0")
    doc.set_key(("resolutions",), "x", "2")
    assert doc.data == {
        "pnpm": {"overrides": {"axios@1.14.1": "1.14.0"}},
        "resolutions": {"x": "2", "axios": "1.14.0"},
    }
    assert doc.dump().endswith(b"}\n")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b'{\n  "a": 1,\n}\n', 3),
        (b'{\n  "a": "1"\n  "b": 2\n}', 3),
        (b"[1]", 1),
        (b'{"a": "\xff"}', 1),
    ],
)
def test_malformed_names_file_line_and_reason(data, line):
    with pytest.raises(ManifestError) as err:
        PackageJson("/x/package.json", data)
    assert err.value.line == line
    assert str(err.value).startswith(f"/x/package.json, line {line}: ")
