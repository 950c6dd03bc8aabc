"""Streaming and hostile-size inputs: ``iter_reports`` over windows gives exactly what
``parse`` gives on the whole log, and over-long lines are clipped (so every per-line regex
is bounded).  Time and memory figures are in bench/report_scaling.py, not here."""
import io
import lzma
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.report import conformance as C
from orchestrator.report.parser import _MAX_LINE, iter_reports, parse

DATA = Path(__file__).parent / "data" / "reports"


def _key(r):
    return (r.title, r.type, r.frame, r.corrupted, r.start_line, r.end_line, r.caller, r.text,
            tuple(r.frames))


def _real_logs() -> str:
    parts = [lzma.open(p, "rt", errors="replace").read() for p in sorted(DATA.glob("*.log.xz"))]
    parts += [p.read_text(errors="replace") for p in sorted(DATA.glob("*.log"))]
    if C.DEFAULT_CORPUS.is_dir():
        parts += [c.log for c in C.load_corpus(C.DEFAULT_CORPUS)]
    return "\n".join(parts)


@pytest.mark.parametrize("window", [1 << 12, 1 << 16, 1 << 20, 8 << 20])
def test_streamed_reports_equal_whole_log_reports(window):
    text = _real_logs()
    whole = [_key(r) for r in parse(text)]
    assert len(whole) > 500
    streamed = [_key(r) for r in iter_reports(io.BytesIO(text.encode()), window)]
    assert streamed == whole


def test_one_huge_line_of_headers_is_one_clipped_report():
    line = "BUG: KASAN: slab-use-after-free in foo+0x1/0x2 " * 200_000  # 9.4 MB, no newline
    reps = parse(line)
    assert len(reps) == 1 and reps[0].title.startswith("KASAN: slab-use-after-free in foo")
    assert len(reps[0].text) <= _MAX_LINE
    streamed = list(iter_reports(io.BytesIO(line.encode()), 1 << 20))
    assert [r.title for r in streamed] == [reps[0].title]


def test_header_after_long_junk_on_its_line_is_still_found():
    log = ("x" * 20_000 + "[   1.0] WARNING: CPU: 0 PID: 1 at mm/foo.c:12 bar+0x1/0x2\n"
           "Call Trace:\n bar+0x1/0x2\n baz+0x3/0x4\n")
    assert [r.title for r in parse(log)] == ["WARNING in bar"]
    assert [r.title for r in iter_reports(io.BytesIO(log.encode()), 4096)] == ["WARNING in bar"]


def test_cli_streams_a_log_larger_than_its_window(tmp_path, capsys):
    text = _real_logs()
    log = tmp_path / "big.log"
    log.write_text("\n".join([text] * 3))
    assert main(["report", str(log)]) == 1
    out = capsys.readouterr().out
    assert f"{3 * len(parse(text))} report(s)" in out


@pytest.mark.skipif(not C.DEFAULT_CORPUS.is_dir(), reason="corpus not available")
def test_streaming_equals_whole_parse_on_mangled_logs():
    """CR line ends, junk-prefixed and over-long lines (past the 64 KiB read cap), NULs and
    repeated lines: windows of any size still give what one whole-log parse gives."""
    import random
    cases = [c.log for c in C.load_corpus(C.DEFAULT_CORPUS)]
    rnd = random.Random(12)
    for _ in range(25):
        lines = "\n".join(rnd.sample(cases, 5)).split("\n")
        for _ in range(20):
            i, op = rnd.randrange(len(lines)), rnd.randrange(4)
            if op == 0:
                lines[i] += "\r"
            elif op == 1:
                lines[i] = "x" * rnd.randrange(5000, 70000) + lines[i]
            elif op == 2:
                lines.insert(i, "\x00junk BUG: KASAN: use-after-free in f+0x1/0x2")
            else:
                lines[i] = lines[i] * rnd.randrange(2, 50)
        text = "\n".join(lines)
        window = rnd.choice([1 << 12, 1 << 14, 1 << 17])
        assert ([_key(r) for r in iter_reports(io.BytesIO(text.encode()), window)]
                == [_key(r) for r in parse(text)])
