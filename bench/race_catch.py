"""Catch rate of the example race series (issue 16; README "Detection").

    .venv/bin/python bench/race_catch.py [--tip N] [--stock M] [--only vma|hugetlb]

Races are flaky by nature, so one run proves little either way. For each example series
this boots its patched debug-VM kernel N times (runs.yaml race-vma-bad / race-hugetlb-bad,
the series job only) and the stock debug-VM kernel M times (the base job of the same run),
each time running the one race program the series targets for its preset's duration, and
counts the runs with a kernel report known-issues.yaml does not list. The tip's rate is
the catch rate; the stock kernel's is the false-alarm rate (it must be 0). The first run
builds the patched kernel if the build store does not have it (an incremental build in the
debug-VM build directory). Writes bench/out/race_catch.md and bench/out/race_catch.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import known_issues, results  # noqa: E402
from table import OUT, markdown, write  # noqa: E402  (bench/table.py, beside this script)

# (key, run, series job, race program, the bug the series opens)
SERIES = [
    ("vma", "race-vma-bad", "x86_64+examples-vma-unmap-nowait", "vma-fault",
     "VMA freed under a page fault (vma-unmap-nowait.mbox)"),
    ("hugetlb", "race-hugetlb-bad", "x86_64+examples-hugetlb-walk-unlocked",
     "hugetlb-pmd-share", "hugetlb shared-PMD unshare vs walkers (hugetlb-walk-unlocked.mbox)"),
]


def one_run(run: str, job_id: str, root: Path, known) -> dict:
    """``kto run RUN --job JOB_ID`` once: wall time, build status, unknown report titles."""
    t0 = time.monotonic()
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "run", run, "--job", job_id,
                         "--results", str(root), "-q"], cwd=REPO, capture_output=True,
                        text=True, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    run_dir = sorted(root.glob(f"{run}-*"), key=lambda p: p.stat().st_mtime)[-1]
    res = results.load(run_dir)
    [job] = res.jobs
    if job.outcome != "ok":
        raise SystemExit(f"{run} --job {job_id}: outcome {job.outcome}: {job.error}\n"
                         f"{cp.stdout[-1500:]}{cp.stderr[-1500:]}")
    unknown = sorted({r.title for r in job.unexpected_reports()
                      if not known_issues.match(known, r.title, job.arch, run)})
    return {"wall": wall, "build": job.build.get("status", ""), "exit": cp.returncode,
            "boot": job.boot.get("seconds", 0.0), "titles": unknown,
            "crash": any(w.status == "crash" for w in job.workloads)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tip", type=int, default=5, help="runs of each patched kernel")
    ap.add_argument("--stock", type=int, default=3, help="runs of the stock kernel")
    ap.add_argument("--only", choices=[s[0] for s in SERIES], action="append",
                    help="only this series (repeatable)")
    args = ap.parse_args()
    known = known_issues.load(REPO / "known-issues.yaml")
    measured = {}
    with tempfile.TemporaryDirectory(prefix="kto-race-catch-") as tmp:
        for key, run, tip_job, program, what in SERIES:
            if args.only and key not in args.only:
                continue
            m = measured[key] = {"run": run, "program": program, "what": what,
                                 "tip": [], "stock": []}
            for kind, job_id, n in (("tip", tip_job, args.tip), ("stock", "x86_64", args.stock)):
                for i in range(n):
                    r = one_run(run, job_id, Path(tmp), known)
                    m[kind].append(r)
                    print(f"{key} {kind} {i + 1}/{n}: {r['wall']:.0f}s build {r['build']} "
                          f"{'CAUGHT ' + '; '.join(r['titles']) if r['titles'] else 'clean'}",
                          flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "race_catch.json").write_text(json.dumps(measured, indent=2) + "\n")
    rows = []
    for key, m in measured.items():
        tip, stock = m["tip"], m["stock"]
        caught = sum(bool(r["titles"]) for r in tip)
        false = sum(bool(r["titles"]) for r in stock)
        titles = sorted({t for r in tip for t in r["titles"]})
        # The first tip run may include the build: the median of the rest is the run time.
        walls = sorted(r["wall"] for r in (tip[1:] or tip) + stock)
        rows.append([m["what"], m["program"], f"{caught}/{len(tip)}",
                     f"{false}/{len(stock)}", f"{walls[len(walls) // 2]:.0f} s",
                     "<br>".join(f"`{t}`" for t in titles) or "none"])
    lines = [f"Race catch rates, x86_64 debug-VM kernel under TCG "
             f"({time.strftime('%Y-%m-%d')}, bench/race_catch.py):", ""]
    lines += markdown(["series (bug class)", "race program", "caught (patched)",
                       "false alarms (stock)", "median run", "titles"], rows, align="llrrrl")
    write("race_catch.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
