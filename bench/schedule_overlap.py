"""How much the local scheduler's overlap saved in one real run, from its summary.json.

Each job records when its build and its guest phase ran (``phases``, seconds since the run
started). The run's wall time is compared with running the same phases one after another
(their measured durations summed). Phases that overlapped ran slower for sharing the
cores, so the sum overstates a sequential run a little: the ratio is an upper bound.
Usage: python bench/schedule_overlap.py RESULTS_DIR [--out bench/out/overlap.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import results  # noqa: E402


def table(run: results.RunResult) -> str:
    rows, build_sum, guest_sum, end = [], 0.0, 0.0, 0.0
    for j in run.jobs:
        b, g = j.phases.get("build"), j.phases.get("guest")
        if not b:
            continue
        bs = b[1] - b[0]
        gs = (g[1] - g[0]) if g else 0.0
        build_sum += bs
        guest_sum += gs
        end = max(end, b[1], g[1] if g else 0.0)
        rows.append(f"| {j.id} | {j.build.get('status', '')} | {b[0]:.0f}-{b[1]:.0f} | "
                    + (f"{g[0]:.0f}-{g[1]:.0f}" if g else "-") + f" | {j.outcome} |")
    if not rows:
        raise SystemExit(f"{run.directory}: no job has a phase timeline (run before kto "
                         "recorded phases)")
    seq = build_sum + guest_sum
    return "\n".join([
        f"Run {run.run} ({run.directory.name}), {len(rows)} jobs, one run on this machine.",
        "",
        "| job | build | build (s) | guest (s) | outcome |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "| schedule | wall time |",
        "|---|---:|",
        f"| phases one after another (sum of the measured phases) | {seq / 60:.1f} min |",
        f"| kto's schedule (measured: builds beside guests) | {end / 60:.1f} min |",
        "",
        f"Ratio: {seq / end:.2f}x (builds {build_sum:.0f} s, guests {guest_sum:.0f} s in "
        "total; an upper bound, see the script's docstring).",
        ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "overlap.md")
    args = ap.parse_args()
    text = table(results.load(args.results_dir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
