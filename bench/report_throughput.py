"""Parser throughput: all corpus logs concatenated (repeated to >= 50 MB), timed parse().

    .venv/bin/python bench/report_throughput.py [CORPUS_DIR]

Prints a one-row markdown table and writes it to bench/out/report_throughput.md.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.report import parse  # noqa: E402
from orchestrator.report.conformance import DEFAULT_CORPUS, load_corpus  # noqa: E402

TARGET = 50 * 1024 * 1024


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CORPUS
    logs = "\n".join(c.log for c in load_corpus(root))
    reps = TARGET // len(logs.encode()) + 1
    text = "\n".join([logs] * reps)
    size = len(text.encode())
    t0 = time.perf_counter()
    reports = parse(text)
    dt = time.perf_counter() - t0
    mb = size / 1e6
    table = ("| MB | seconds | MB/s | reports |\n|---:|---:|---:|---:|\n"
             f"| {mb:.1f} | {dt:.2f} | {mb / dt:.1f} | {len(reports)} |\n")
    print(table, end="")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "report_throughput.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
