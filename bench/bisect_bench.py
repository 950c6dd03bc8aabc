"""Benchmark: kto bisect over the 8-patch example series vs testing every patch in turn.

Runs `kto bisect patches/examples/kasan-vmalloc.mbox --run examples` for real and reads
its bisect.json (builds, boots, test runs, wall time). "Every patch in turn" (steps 0..8,
each built and tested with the same repeat rule as the bisect) is not run a second time:
its cost is computed from the same run's measured mean incremental build time and mean
boot+workload time, and the table says so. Writes bench/out/bisect.md.
Usage: python bench/bisect_bench.py [--series FILE] [--run NAME] [--from-json bisect.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=str(REPO / "patches/examples/kasan-vmalloc.mbox"))
    ap.add_argument("--run", default="examples")
    ap.add_argument("--from-json", type=Path, help="use an existing bisect.json")
    args = ap.parse_args()
    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            cp = subprocess.run([sys.executable, "-m", "orchestrator", "bisect", args.series,
                                 "--run", args.run, "--results", tmp], cwd=REPO)
            print(f"kto bisect exited {cp.returncode} after {time.monotonic() - t0:.0f}s")
            [path] = Path(tmp).glob("*/bisect.json")
            data = json.loads(path.read_text())
    steps = data["steps"]
    n = len(data["patches"])
    # Per-step costs measured in this bisect: a real build is the step's first run.
    build_runs = [s["seconds"] for s in steps if s["built"]]
    reuse_runs = [s["seconds"] for s in steps if not s["built"] and s["booted"]]
    run_s = statistics.mean(reuse_runs) if reuse_runs else statistics.mean(build_runs)
    build_s = max(0.0, statistics.mean(build_runs) - run_s) if build_runs else 0.0
    # Linear: every step 0..N built once and tested with the bisect's repeat rule (the
    # same number of runs the bisect needed at a good step / a bad step).
    first_bad = (data["verdict"] or {}).get("first_bad") or [n]
    runs_at = {}
    for s in steps:
        runs_at[s["step"]] = runs_at.get(s["step"], 0) + 1
    good_runs = max([runs_at[k] for k in runs_at if k < first_bad[0]] or [1])
    linear_runs = first_bad[0] * good_runs + (n + 1 - first_bad[0])
    linear_builds = n + 1
    linear_s = linear_builds * build_s + linear_runs * run_s
    rows = [
        ("kto bisect (measured)", data["builds"], data["boots"], len(steps), data["seconds"]),
        ("every patch in turn (computed from the same run's costs)", linear_builds,
         linear_runs, linear_runs, linear_s),
    ]
    table = ["| strategy | builds | boots | test runs | wall time |", "|---|---:|---:|---:|---:|"]
    table += [f"| {name} | {b} | {bo} | {r} | {s / 60:.1f} min |" for name, b, bo, r, s in rows]
    verdict = (data["verdict"] or {}).get("summary", "no verdict")
    text = (f"Bisect benchmark, {time.strftime('%Y-%m-%d')}, x86_64, series "
            f"{Path(data['series']).name} ({n} patches), one run on this 2-core machine.\n"
            f"Verdict: {verdict}.\nMeasured means: incremental build {build_s:.0f}s, boot + "
            f"workload {run_s:.0f}s per test run.\n\n" + "\n".join(table) + "\n"
            f"\nRatio (wall time): every patch in turn / bisect = {linear_s / data['seconds']:.1f}x\n")
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bisect.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
