"""Minimal edits of `.npmrc`, top-level YAML keys and TOML tables: the file is never
re-serialised. A key already present has its line replaced (all other lines, comments, the line
endings, a BOM and a missing final newline are kept); a new key is appended. A form these edits
cannot handle safely (a flow-style mapping, an inline table) is refused with the reason."""

from __future__ import annotations

import re

BOM = "\ufeff"


class EditRefused(ValueError):
    """The file writes the key in a form this module does not edit; say so, edit by hand."""


def _split(text: str) -> tuple[str, list[str], str]:
    bom = BOM if text.startswith(BOM) else ""
    body = text[len(bom) :]
    newline = "\r\n" if "\r\n" in body else "\n"
    return bom, body.splitlines(keepends=True), newline


def _ending(line: str, newline: str) -> str:
    stripped = line.rstrip("\r\n")
    return line[len(stripped) :] or ""


def _append(lines: list[str], new: list[str], newline: str) -> None:
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    lines += [line + newline for line in new]


def current_ini(text: str, key: str) -> str | None:
    """The last value of `key=value` in an npmrc (None when absent)."""
    value = None
    for line in text.lstrip(BOM).splitlines():
        name, sep, rest = line.partition("=")
        if sep and name.strip() == key and not line.lstrip().startswith((";", "#")):
            value = rest.strip()
    return value


def set_ini(text: str, key: str, value: str) -> str:
    """`key=value` in an npmrc: every line of that key replaced, or one appended."""
    bom, lines, newline = _split(text)
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    found = False
    for index, line in enumerate(lines):
        if pattern.match(line):
            lines[index] = f"{key}={value}{_ending(line, newline) or ''}"
            found = True
    if not found:
        _append(lines, [f"{key}={value}"], newline)
    return bom + "".join(lines)


def _yaml_key(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(['\"]?){re.escape(key)}\1\s*:(?:\s|$)")


def current_yaml(text: str, key: str) -> str | None:
    """The raw text after `key:` at the top level (`""` for a block value), or None."""
    pattern = _yaml_key(key)
    for line in text.lstrip(BOM).splitlines():
        if pattern.match(line):
            value = line.split(":", 1)[1]
            value = re.sub(r"\s+#.*$", "", value).strip()
            return value
    return None


def set_yaml(text: str, key: str, value: str) -> str:
    """`key: value` at the top level of a YAML mapping: its line (and a block value under it)
    replaced, or one appended."""
    bom, lines, newline = _split(text)
    if lines and re.match(r"^\s*\{", "".join(lines).lstrip()):
        raise EditRefused("it is written as a flow-style mapping ({...})")
    pattern = _yaml_key(key)
    for index, line in enumerate(lines):
        if not pattern.match(line):
            continue
        end = index + 1
        while end < len(lines) and (
            lines[end].startswith((" ", "\t", "-")) or not lines[end].strip()
        ):
            end += 1
        while end > index + 1 and not lines[end - 1].strip():
            end -= 1  # blank lines after the block belong to what follows
        ending = _ending(lines[end - 1], newline) or ("" if end == len(lines) else newline)
        lines[index:end] = [f"{key}: {value}{ending}"]
        return bom + "".join(lines)
    _append(lines, [f"{key}: {value}"], newline)
    return bom + "".join(lines)


_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"-]+)\s*\]\s*(?:#.*)?$")


def _toml_key(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(['\"]?){re.escape(key)}\1\s*=")


def _table_span(lines: list[str], table: str) -> tuple[int, int] | None:
    """(header index, end index) of `[table]`, or None."""
    for index, line in enumerate(lines):
        match = _TABLE.match(line.rstrip("\r\n"))
        if match and match.group(1).replace('"', "") == table:
            end = index + 1
            while end < len(lines) and not _TABLE.match(lines[end].rstrip("\r\n")):
                if re.match(r"^\s*\[\[", lines[end]):
                    break
                end += 1
            return index, end
    return None


def current_toml(text: str, table: str, key: str) -> str | None:
    """The raw value of `key` in `[table]` (or a top-level `table.key`), or None."""
    _, lines, _ = _split(text)
    span = _table_span(lines, table)
    candidates = []
    if span:
        candidates += lines[span[0] + 1 : span[1]]
    first_table = next((i for i, ln in enumerate(lines) if _TABLE.match(ln.rstrip())), len(lines))
    dotted = _toml_key(f"{table}.{key}")
    for line in lines[:first_table]:
        if dotted.match(line):
            candidates.append(line.replace(f"{table}.", "", 1))
    pattern = _toml_key(key)
    for line in candidates:
        if pattern.match(line):
            return re.sub(r"\s+#.*$", "", line.split("=", 1)[1]).strip()
    return None


def set_toml(text: str, table: str, key: str, value: str) -> str:
    """`key = value` in `[table]`: replaced where it is, else added to the table (created at the
    end when missing). A top-level `table.key = ...` is replaced in place."""
    bom, lines, newline = _split(text)
    first_table = next((i for i, ln in enumerate(lines) if _TABLE.match(ln.rstrip())), len(lines))
    if any(re.match(rf"^\s*{re.escape(table)}\s*=\s*\{{", ln) for ln in lines[:first_table]):
        raise EditRefused(f"`{table}` is an inline table ({table} = {{...}})")
    dotted = _toml_key(f"{table}.{key}")
    for index in range(first_table):
        if dotted.match(lines[index]):
            lines[index] = f"{table}.{key} = {value}{_ending(lines[index], newline)}"
            return bom + "".join(lines)
    span = _table_span(lines, table)
    if span is None:
        block = [f"[{table}]", f"{key} = {value}"]
        if lines and "".join(lines).strip():
            block.insert(0, "")
        _append(lines, block, newline)
        return bom + "".join(lines)
    start, end = span
    pattern = _toml_key(key)
    for index in range(start + 1, end):
        if pattern.match(lines[index]):
            lines[index] = f"{key} = {value}{_ending(lines[index], newline)}"
            return bom + "".join(lines)
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1
    if not lines[last - 1].endswith(("\n", "\r")):
        lines[last - 1] += newline
    lines.insert(last, f"{key} = {value}{newline}")
    return bom + "".join(lines)
