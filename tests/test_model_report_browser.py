"""The HTML model report in a real headless browser (Debian's Chromium): its
charts are drawn (the screenshot's pixels inside each chart's box show the data
series' colours, not just an empty frame), and opening it makes no request at
all, with name resolution and every proxied connection blocked.

Chromium is installed by `.ci/run`; under CI=true a missing browser fails this
test, elsewhere it is skipped with the reason."""

from __future__ import annotations

import html as html_text
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_model_report import assert_self_contained, binary_project
from wbtest import wb_inprocess as wbi

from workbench.models.report_svg import PALETTE

pytestmark = pytest.mark.slow

WIDTH = 1200
# Whatever the page asks for, the browser can reach nothing: every host name
# fails to resolve and every connection goes to a proxy that is not there.
BLOCKED = [
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]
PROBE = """<script>
(() => {
  const boxes = [...document.querySelectorAll("svg.chart")].map((e) => {
    const r = e.getBoundingClientRect();
    return {kind: e.dataset.kind, x: r.left, y: r.top, w: r.width, h: r.height};
  });
  const requests = performance.getEntriesByType("resource").map((e) => e.name);
  const out = document.createElement("pre");
  out.id = "probe";
  out.style.position = "absolute";
  const height = document.documentElement.scrollHeight;
  out.textContent = JSON.stringify({boxes, requests, height});
  document.body.appendChild(out);
})();
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def _browse(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--force-device-scale-factor=1",
            f"--user-data-dir={profile}",
            *BLOCKED,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _pixels(path: Path) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as a (height, width, channels)
    array, decoded with zlib: no imaging library needed."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(stride) & 255
        elif kind == 2:  # Up
            row = (line + previous) & 255
        else:  # Average and Paeth depend on the pixel to the left: byte by byte
            row = _unfilter(int(kind), line.tolist(), previous.tolist(), bpp)
        out[y] = row
        previous = np.asarray(row, np.int32)
    return out.reshape(height, width, bpp)[:, :, :3]


def _unfilter(kind: int, line: list[int], above: list[int], bpp: int) -> np.ndarray:
    row = [0] * len(line)
    for i, value in enumerate(line):
        left = row[i - bpp] if i >= bpp else 0
        up = above[i]
        if kind == 3:
            row[i] = (value + (left + up) // 2) & 255
            continue
        corner = above[i - bpp] if i >= bpp else 0
        p = left + up - corner
        pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
        best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
        row[i] = (value + best) & 255
    return np.asarray(row, np.int32)


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_the_html_report_renders_its_charts_offline_in_chromium(tmp_path):
    browser = _chromium()
    binary_project(tmp_path)
    report = tmp_path / "report.html"
    wbi("model", "report", "binary", "-o", str(report), check=True)
    page = report.read_text()
    assert_self_contained(page)

    # Where the charts are and what the page loaded, measured by the browser on a
    # copy of the page with a probe script (the report itself has no script).
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dumped = _browse(
        browser, tmp_path / "profile-a", "--window-size=1200,2000", "--dump-dom", probe.as_uri()
    )
    found = re.search(r'<pre id="probe"[^>]*>(.*?)</pre>', dumped.stdout, re.S)
    assert found, f"no probe output; stderr:\n{dumped.stderr[-2000:]}"
    measured = json.loads(html_text.unescape(found.group(1)))
    assert measured["requests"] == []  # nothing fetched: no fonts, images, styles or scripts
    boxes = {b["kind"]: b for b in measured["boxes"]}
    assert set(boxes) == {"importance", "roc", "pr", "calibration"}

    # The report itself, screenshotted tall enough to hold every chart.
    bottom = max(b["y"] + b["h"] for b in boxes.values())
    height = int(min(max(bottom + 40, 600), 8000))
    shot = tmp_path / "shot.png"
    taken = _browse(
        browser,
        tmp_path / "profile-b",
        f"--window-size={WIDTH},{height}",
        f"--screenshot={shot}",
        report.as_uri(),
    )
    assert shot.exists(), taken.stderr[-2000:]
    pixels = _pixels(shot).astype(np.int32)
    assert pixels.shape[:2] == (height, WIDTH)
    background = pixels[2, 2]
    series = [_hex(c) for c in PALETTE[:4]]
    for kind, box in boxes.items():
        x0, y0 = int(box["x"]) + 1, int(box["y"]) + 1
        x1, y1 = int(box["x"] + box["w"]) - 1, int(box["y"] + box["h"]) - 1
        area = pixels[y0:y1, x0:x1]
        assert area.size, f"{kind}: an empty box"
        drawn = np.abs(area - background).sum(axis=2) > 30
        assert drawn.mean() > 0.01, f"{kind}: the chart area is blank"
        coloured = max(int((np.abs(area - c).sum(axis=2) < 40).sum()) for c in series)
        assert coloured > 80, f"{kind}: no data drawn in the series' colours ({coloured} pixels)"
