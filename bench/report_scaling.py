"""`kto report` on hostile and huge logs: time on one 50 MB line of repeated KASAN headers
(linear time), and peak memory on ~200 MB logs (streamed, so bounded): the corpus repeated,
and reports made of 4 KB lines.

    .venv/bin/python bench/report_scaling.py [CORPUS_DIR] [--line-mb N] [--log-mb N]

Each case runs `python -m orchestrator report LOG` in a fresh process (output to /dev/null)
and reads its wall time and peak RSS.  The 1/5/50 MB single lines show the time growing
linearly with the size.  Writes the table to bench/out/report_scaling.md when run with the
default sizes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.report import parse  # noqa: E402
from orchestrator.report.conformance import DEFAULT_CORPUS, load_corpus  # noqa: E402

HEADER = "BUG: KASAN: slab-use-after-free in foo+0x1/0x2 "


def run_report(log: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit code) of `kto report LOG` in a child process."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "rc = subprocess.run([sys.executable, '-m', 'orchestrator', 'report', sys.argv[1]],"
            " stdout=subprocess.DEVNULL).returncode\n"
            "dt = time.perf_counter() - t\n"
            "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(log)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--line-mb", type=float, default=50, help="largest single line, MB")
    ap.add_argument("--log-mb", type=float, default=200, help="size of the large log, MB")
    args = ap.parse_args()
    rows = ["| input | MB | seconds | MB/s | peak RSS MB | exit |", "|---|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="kto-bench-") as tmp:
        log = Path(tmp) / "log"
        sizes = sorted({s for s in (1, 5, args.line_mb) if s <= args.line_mb})
        for mb in sizes:
            n = int(mb * 1e6) // len(HEADER)
            with log.open("w") as f:
                f.write(HEADER * n)  # one line, no newline at all
            size = log.stat().st_size / 1e6
            dt, rss, rc = run_report(log)
            rows.append(f"| one line of repeated KASAN headers | {size:.1f} | {dt:.2f} | {size / dt:.1f} | {rss:.0f} | {rc} |")
            print(rows[-1], flush=True)
        for mb in sizes:  # the library path (pipeline, tests): parse() of the whole string
            text = HEADER * (int(mb * 1e6) // len(HEADER))
            t0 = time.perf_counter()
            parse(text)
            dt = time.perf_counter() - t0
            rows.append(f"| parse() of one line of repeated KASAN headers | {len(text) / 1e6:.1f} | {dt:.2f} "
                        f"| {len(text) / 1e6 / dt:.1f} | - | - |")
            print(rows[-1], flush=True)
            del text
        corpus = ("\n".join(c.log for c in load_corpus(args.corpus)) + "\n").encode()
        with log.open("wb") as f:
            for _ in range(int(args.log_mb * 1e6) // len(corpus) + 1):
                f.write(corpus)
        size = log.stat().st_size / 1e6
        dt, rss, rc = run_report(log)
        rows.append(f"| syzkaller corpus logs repeated | {size:.1f} | {dt:.2f} | {size / dt:.1f} | {rss:.0f} | {rc} |")
        print(rows[-1], flush=True)
        # Worst case for memory: every report is 1000 distinct lines of 4 KB.
        with log.open("w") as f:
            n = 0
            while f.tell() < args.log_mb * 1e6:
                f.write(f"[  1.0] WARNING: CPU: 0 PID: {n} at mm/foo.c:1 foo{n}+0x1/0x2\nCall Trace:\n")
                f.writelines(f" bar{n}_{i}+0x1/0x2 " + "y" * 4000 + "\n" for i in range(1000))
                n += 1
        size = log.stat().st_size / 1e6
        dt, rss, rc = run_report(log)
        rows.append(f"| reports of 1000 lines of 4 KB | {size:.1f} | {dt:.2f} | {size / dt:.1f} | {rss:.0f} | {rc} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows) + "\n"
    print(table, end="")
    if args.line_mb >= 50 and args.log_mb >= 200:
        out = Path(__file__).resolve().parent / "out"
        out.mkdir(exist_ok=True)
        (out / "report_scaling.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
