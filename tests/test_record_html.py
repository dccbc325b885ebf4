"""The HTML record in a real browser: Debian's chromium, headless, offline.

The DOM chromium renders is checked (the timeline lanes, the summary table, the problems box),
and a screenshot is written under the test's tmp dir and checked to be an image of a page, not a
blank one. The file itself must fetch nothing: no script, no external URL, a CSP forbidding any
load."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.record_support import FIXTURES, call

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing resolves: a fetch would fail visibly
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "record.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(FIXTURES)
        result = call(
            "report",
            "journals",
            "--format",
            "html",
            "--incident",
            "axios 2026-03",
            "--allowed-signers",
            "allowed_signers",
            "-o",
            out,
        )
    assert result.code == 1  # the tampered journal
    return out


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "chromium is needed: apt-get install -y chromium"
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"},
    )


class Dom(HTMLParser):
    """The elements of the rendered DOM: (tag, attributes) and text per element id."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_file_fetches_nothing(page: Path) -> None:
    html = page.read_text()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in html
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"""\s(src|href)=""", html)
    assert "url(" not in html and "@import" not in html
    # the only URL is the SVG namespace, which is a name, not a fetch
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_chromium_renders_the_timeline_and_the_summary(page: Path, tmp_path: Path) -> None:
    proc = chromium("--dump-dom", page.as_uri(), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom()
    dom.feed(proc.stdout)
    lanes = [a for tag, a in dom.elements if tag == "g" and "lane" in a.get("class", "")]
    assert {(a["data-host"], a["data-mode"]) for a in lanes} == {
        ("ci-runner-7", "live"),
        ("laptop-ana", "live"),
        ("laptop-ana", "dry-run"),
        ("build-host-2", "unusable"),
    }
    spans = [
        a["class"] for tag, a in dom.elements if tag == "rect" and "span" in a.get("class", "")
    ]
    assert {"span outcome-succeeded", "span outcome-failed", "span outcome-outstanding"} <= set(
        spans
    )
    markers = [a["class"] for tag, a in dom.elements if tag == "polygon"]
    assert markers == ["marker note"]
    ids = {a.get("id") for _, a in dom.elements}
    assert {"problems", "summary", "lanes", "runs", "dry-runs", "events", "findings"} <= ids
    rows = proc.stdout.split('id="summary"')[1].split("</table>")[0].count("<tr>")
    assert rows == 4  # the header and three hosts
    text = " ".join(dom.text)
    assert "2 journals were NOT merged" in text
    assert "compromised" in text and "ana@example.test" in text


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _png_colours(data: bytes, sample: int = 4000) -> int:
    """How many distinct colours a sample of rows holds (RGB/RGBA, 8 bits, as chromium writes)."""
    width, height = _png_size(data)
    depth, kind = data[24], data[25]
    assert depth == 8 and kind in (2, 6)
    channels = 3 if kind == 2 else 4
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        if data[pos + 4 : pos + 8] == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind_, row = line[0], bytearray(line[1:])
        for x in range(stride):  # undo the PNG filter of this row
            left = row[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind_ == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind_ == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind_ == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind_ == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (row[x] + pred) & 0xFF
        previous = row
        if y % 8 == 0:
            for x in range(0, stride, channels * 4):
                colours.add(bytes(row[x : x + 3]))
        if len(colours) > sample:
            break
    return len(colours)


def test_screenshot(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "record.png"
    proc = chromium(
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.as_uri(),
        tmp=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert _png_size(data) == (1280, 2000)
    assert len(data) > 50_000, "a page of tables and a coloured timeline, not a blank image"
    assert _png_colours(data) > 50


def test_print_to_pdf(page: Path, tmp_path: Path) -> None:
    """The print stylesheet lays the record out on pages ("Save as PDF")."""
    pdf = tmp_path / "record.pdf"
    proc = chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri(), tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 30
    assert b"/MediaBox [0 0 841" in data or b"/MediaBox[0 0 841" in data  # A4 landscape
