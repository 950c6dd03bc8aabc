"""Peak memory of ``kto report`` on a 200 MB console log (issue 17, item 7).

    .venv/bin/python bench/parser_memory.py [--mb 200] [CORPUS_DIR]

Two logs of the same size, written to a temporary directory:
- *dense*: all corpus logs concatenated and repeated (a report every few KB: the worst
  case for the parser's per-report state);
- *quiet*: a real kto console log of a clean x86_64 run (boot + vmalloc fast, whose
  expected allocation-failure trace is not a report) repeated: no reports at all, what
  a long soak console looks like.

Each runs as ``python -m orchestrator report LOG`` in a child process (what a user
runs, output to /dev/null); peak RSS is the child's ru_maxrss from wait4. The same at a
quarter of the size shows whether memory grows with the log. The interpreter with kto
imported is the floor. Writes bench/out/parser_memory.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.report.conformance import DEFAULT_CORPUS, load_corpus  # noqa: E402
from table import markdown, write  # noqa: E402

QUIET_LOG = REPO / "tests/data/workloads/vmalloc-fast-x86_64-console.log"


def write_repeated(path: Path, chunk: str, size: int) -> int:
    data = chunk.encode()
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            fh.write(data)
            written += len(data)
    return written


def measure(argv: list[str], stdout: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of a child process writing to ``stdout``."""
    t0 = time.perf_counter()
    with open(stdout, "wb") as fh:
        p = subprocess.Popen(argv, stdout=fh, stderr=subprocess.PIPE, cwd=REPO)
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace").strip()
    p.stderr.close()
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)}: exit {code}: {err}")
    return wall, ru.ru_maxrss / 1024


def count_reports(stdout: Path) -> str:
    """The report count from the summary line ``kto report`` prints after the reports."""
    with open(stdout, "rb") as fh:
        fh.seek(max(0, stdout.stat().st_size - (1 << 20)))
        tail = fh.read().decode(errors="replace")
    found = [ln for ln in tail.splitlines() if " report(s), " in ln]
    return found[-1].split(" report(s)")[0].strip() if found else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--mb", type=float, default=200, help="log size in MB (default 200)")
    args = ap.parse_args()
    dense = "\n".join(c.log for c in load_corpus(args.corpus)) + "\n"
    quiet = QUIET_LOG.read_text(errors="replace")
    size = int(args.mb * 1e6)
    kto = [sys.executable, "-m", "orchestrator", "report"]

    rows = []
    with tempfile.TemporaryDirectory(prefix="kto-parser-mem-") as tmp:
        stdout = Path(tmp) / "stdout"
        _, floor_rss = measure([sys.executable, "-c", "import orchestrator.cli, "
                                "orchestrator.report.cli, orchestrator.report.parser"], stdout)
        for name, chunk in (("dense (syzkaller corpus)", dense),
                            ("quiet (kto x86_64 boot + vmalloc console)", quiet)):
            for frac in (0.25, 1.0):
                log = Path(tmp) / "console.log"
                n = write_repeated(log, chunk, int(size * frac))
                wall, rss = measure([*kto, str(log)], stdout)
                rows.append((name, n / 1e6, wall, rss, count_reports(stdout)))
                log.unlink()
                print(f"{name} {n / 1e6:.0f} MB: {wall:.1f}s, peak RSS {rss:.0f} MiB", flush=True)

    lines = [f"`kto report LOG` peak memory, {time.strftime('%Y-%m-%d')}, one run each on this "
             f"machine ({os.cpu_count()} cores); floor (interpreter + kto imported): "
             f"{floor_rss:.0f} MiB.", "",
             *markdown(["log", "MB", "seconds", "MB/s", "peak RSS (MiB)", "RSS / log size",
                        "reports"],
                       [(name, f"{mb:.0f}", f"{wall:.1f}", f"{mb / wall:.1f}", f"{rss:.0f}",
                         f"{rss * 1.048576 / mb:.2f}x", reports)
                        for name, mb, wall, rss, reports in rows])]
    text = "\n".join(lines) + "\n"
    write("parser_memory.md", text, save=args.mb >= 200)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
