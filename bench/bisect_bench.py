"""Benchmark: what kto bisect costs before and after issue 18 (a crashed kernel ends its
run at once; the base runs once; a bisect step stops at the first matching report).

For each series (default: the 8-patch kasan-vmalloc example, whose report the kernel
survives, and the 16-patch vmalloc-oops-16 series, whose bad steps oops), runs
`kto bisect SERIES --run examples` for real and reads its bisect.json: that is the
"after" row. The "before" row is computed, not run (an oopsing step cost the whole
workload timeout, 15 min, before): the policy of the time (Bisection(base_once=False):
the base got the runs of a good verdict) replayed on the outcomes this bisect observed,
each run charged what it cost before:
  - a real build: this run's mean incremental build time (a step whose kernel was in
    the build store in this run is a store hit before too);
  - a run without the report: this run's mean boot + workload time for such runs;
  - a run whose kernel crashed (workload "crash"): boot + the run's workload timeout
    (the module load never returned; kto waited for the timeout);
  - a run stopped at the matching report (workload "stopped"): boot + the mean clean
    workload time (a lower bound: the whole workload ran).
Writes bench/out/bisect.md.
Usage: python bench/bisect_bench.py [--series FILE ...] [--run NAME] [--from-json F ...]
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
sys.path.insert(0, str(REPO))

from orchestrator.bisect import HIT, MISS, Bisection, Run  # noqa: E402
from table import markdown, write  # noqa: E402

SERIES = ["patches/examples/kasan-vmalloc.mbox", "patches/examples/vmalloc-oops-16.mbox"]


def _bisect(series: str, run: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        cp = subprocess.run([sys.executable, "-m", "orchestrator", "bisect", series,
                             "--run", run, "--results", tmp], cwd=REPO)
        print(f"kto bisect {series} exited {cp.returncode} after "
              f"{time.monotonic() - t0:.0f}s", flush=True)
        [path] = Path(tmp).glob("*/bisect.json")
        return json.loads(path.read_text())


def _workload_timeout(run: str) -> int:
    from orchestrator.commands.run import load_run
    return load_run(REPO / "runs.yaml", run).timeouts.workload


def before(data: dict, timeout: int) -> dict:
    """The old policy and the old per-run costs, on this bisect's observed outcomes."""
    steps, n = data["steps"], len(data["patches"])
    first_bad = min([s["step"] for s in steps if s["hit"]] or [n])
    builds = [s["build_seconds"] for s in steps if s["built"] and s["build_seconds"]]
    build_s = statistics.mean(builds) if builds else 0.0
    clean = [s["seconds"] - (s["build_seconds"] or 0) * s["built"] for s in steps
             if not s["hit"] and s["booted"]]
    clean_s = statistics.mean(clean)
    boot_s = statistics.mean(s["boot_seconds"] or 0 for s in steps if s["booted"])
    crashed = any(w["status"] == "crash" for s in steps for w in s["workloads"])
    hit_s = boot_s + timeout if crashed else clean_s
    b = Bisection(n, base_once=False)
    # Steps whose kernel was already in the build store (the base is the default kernel).
    seen, cached = set(), set()
    for s in steps:
        if s["step"] not in seen and not s["built"]:
            cached.add(s["step"])
        seen.add(s["step"])
    seconds, built, runs = 0.0, set(cached), 0
    # kto bisect without --title: the tip and the base once each to learn the titles.
    for k in [n, 0]:
        b.record(k, Run(HIT if k >= first_bad else MISS))
    order = [n, 0]
    while (k := b.next_step()) is not None:
        b.record(k, Run(HIT if k >= first_bad else MISS))
        order.append(k)
    for k in order:
        runs += 1
        seconds += hit_s if k >= first_bad else clean_s
        if k not in built:
            built.add(k)
            seconds += build_s
    return {"builds": len(built - cached), "runs": runs, "seconds": seconds,
            "verdict": b.result().summary, "hit_s": hit_s, "clean_s": clean_s,
            "build_s": build_s, "crashed": crashed}


def section(data: dict, timeout: int) -> str:
    old = before(data, timeout)
    n = len(data["patches"])
    after_runs = len(data["steps"])
    rows = [("before (old policy and per-run costs, computed)", old["builds"], old["runs"],
             old["seconds"]),
            ("after (kto bisect, measured)", data["builds"], after_runs, data["seconds"])]
    table = markdown(["", "builds", "test runs", "wall time"],
                     [(name, bl, r, f"{s / 60:.1f} min") for name, bl, r, s in rows])
    verdict = (data["verdict"] or {}).get("summary", "no verdict")
    hit_runs = sum(s["hit"] for s in data["steps"])
    return (f"### {Path(data['series']).name} ({n} patches)\n\n"
            f"Verdict: {verdict}.\n"
            f"Measured means: incremental build {old['build_s']:.0f}s, boot + workload "
            f"{old['clean_s']:.0f}s for a run without the report; {hit_runs} run(s) with "
            f"the report, each charged {old['hit_s']:.0f}s before "
            + ("(boot + the workload timeout: the kernel oopsed and the module load never "
               "returned).\n" if old["crashed"] else "(the whole workload).\n")
            + "\n" + "\n".join(table) + "\n\n"
            f"Saved: {old['runs'] - after_runs} test run(s), "
            f"{(old['seconds'] - data['seconds']) / 60:.1f} min "
            f"({old['seconds'] / data['seconds']:.1f}x).\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", action="append", help="series file (repeatable)")
    ap.add_argument("--run", default="examples")
    ap.add_argument("--from-json", type=Path, action="append",
                    help="use existing bisect.json files instead of running")
    args = ap.parse_args()
    timeout = _workload_timeout(args.run)
    if args.from_json:
        results = [json.loads(p.read_text()) for p in args.from_json]
    else:
        results = [_bisect(str(REPO / s) if not Path(s).is_absolute() else s, args.run)
                   for s in (args.series or SERIES)]
    text = (f"Bisect benchmark, {time.strftime('%Y-%m-%d')}, x86_64, run {args.run} "
            f"(workload timeout {timeout}s), one run each on this 2-core machine.\n\n"
            + "\n".join(section(d, timeout) for d in results))
    write("bisect.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
