"""Parser throughput: all corpus logs concatenated (repeated to >= 50 MB), timed parse().

    .venv/bin/python bench/report_throughput.py [CORPUS_DIR] [--mb N]

``--mb`` lowers the target size for quick runs while iterating (the recorded figure uses 50).

Prints a one-row markdown table and writes it to bench/out/report_throughput.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.report import parse  # noqa: E402
from orchestrator.report.conformance import DEFAULT_CORPUS, load_corpus  # noqa: E402

TARGET = 50 * 1024 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--mb", type=float, default=TARGET / 1024 / 1024, help="target size in MiB")
    args = ap.parse_args()
    logs = "\n".join(c.log for c in load_corpus(args.corpus))
    reps = int(args.mb * 1024 * 1024) // len(logs.encode()) + 1
    text = "\n".join([logs] * reps)
    size = len(text.encode())
    t0, c0 = time.perf_counter(), time.process_time()
    reports = parse(text)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    mb = size / 1e6
    # CPU time too: on a loaded machine (kernel builds) wall time mostly measures the load.
    table = ("| MB | seconds | MB/s | CPU seconds | MB/s (CPU) | reports |\n"
             "|---:|---:|---:|---:|---:|---:|\n"
             f"| {mb:.1f} | {dt:.2f} | {mb / dt:.1f} | {cpu:.2f} | {mb / cpu:.1f} | {len(reports)} |\n")
    print(table, end="")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    if args.mb * 1024 * 1024 >= TARGET:
        (out / "report_throughput.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
