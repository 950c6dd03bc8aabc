"""index.html rendered by headless Chromium: the screenshot must be a real page (size,
many colours, mostly not background) with the verdict banner in the right colour."""
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from orchestrator import results

RUNS = Path(__file__).parent / "data" / "runs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium not installed (scripts/setup-system.sh)")

RED, GREEN = (0xb3, 0x26, 0x1e), (0x1f, 0x7a, 0x3f)     # header.failed / header.clean


def decode_png(data: bytes):
    """(width, height, rows of (r, g, b) tuples) for 8-bit RGB/RGBA non-interlaced PNGs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and not interlace, ihdr
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def screenshot(directory: Path, out: Path, size=(1280, 1400)) -> bytes:
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={out}", (directory / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    return out.read_bytes()


@pytest.mark.parametrize("fixture,banner", [("selftest-arm64", RED),
                                            ("matrix-quick-arm64", GREEN)])
def test_index_html_screenshot(tmp_path, fixture, banner):
    shutil.copytree(RUNS / fixture, tmp_path / fixture)
    r = results.load(tmp_path / fixture)
    r.write()
    png = screenshot(r.directory, tmp_path / "shot.png")
    assert len(png) > 20_000
    w, h, rows = decode_png(png)
    assert (w, h) == (1280, 1400)
    pixels = Counter(p for row in rows[::4] for p in row[::4])
    background, n = pixels.most_common(1)[0]
    total = sum(pixels.values())
    assert len(pixels) > 50, "too few colours: blank or unstyled page"
    assert n / total < 0.9, f"{n / total:.0%} of the page is {background}"
    # the verdict banner across the top, in the verdict's colour
    top = Counter(rows[10])
    assert top.most_common(1)[0][0] == banner
    if fixture == "selftest-arm64":
        # the report's dark console excerpt is on screen
        assert sum(c for p, c in pixels.items() if max(p) < 40) > total * 0.05


BAD_CELL = (0xfb, 0xe0, 0xde)          # .bad


@pytest.mark.parametrize("fixture", ["mm-vmemmap-x86_64", "matrix-quick-arm64"])
def test_index_html_screenshot_shows_infra_and_failing_tests_red(tmp_path, fixture):
    """An infra-error run has a red banner and red matrix cells; a run with a failing
    test shows that test's red row on screen (failures first)."""
    shutil.copytree(RUNS / fixture, tmp_path / fixture)
    r = results.load(tmp_path / fixture)
    if fixture == "matrix-quick-arm64":
        r.jobs[0].workloads[1].tests[2].status = "fail"
        r.jobs[0].workloads[1].status = "fail"
    r.write()
    w, h, rows = decode_png(screenshot(r.directory, tmp_path / "shot.png"))
    assert Counter(rows[10]).most_common(1)[0][0] == RED
    pixels = Counter(p for row in rows[::2] for p in row[::2])
    assert pixels[BAD_CELL] > 500, pixels.most_common(8)
