"""kto build [RUN]: the kernel of every job of a run, built or found in the build store,
with the guest pieces a later ``kto run`` of it needs; nothing is booted.

For CI pipelines with a build stage before the test stages (the stage warms the runner's
cache; ``kto run`` then finds everything stored), and for a lane that builds every kernel
while another runs guests: a ``kto run`` of a kernel being built here waits for the
worktree and build locks and then finds it in the store (build.build looks again once it
holds the build lock), so no kernel is built twice.

Each job goes through pipeline.build_job, exactly the build half of ``kto run``: the same
plan, inputs and store keys, and the same extras: the mm selftest programs the run's
workloads use (kto run's fast path for a stored stock kernel needs them stored too) and
the arch's guest initramfs. Not made here: the per-job modules archive, put together at
boot time in the run's results.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import pipeline, source
from orchestrator.commands import options
from orchestrator.commands.run import add_job_selection, load_run, progress, selected_jobs
from orchestrator.errors import KtoError
from orchestrator.results import JobResult

# build.BuildResult.status -> what kto build prints
_STATUS = {"ok": "built", "cached": "cached", "failed": "failed"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build a run's kernels (and guest pieces), boot nothing",
                       description="Build the kernel of every job of a run, or find it in "
                       "the build store, with the selftest programs its workloads use and "
                       "the guest image, so that a later kto run of it builds nothing. "
                       "Prints one line per job: job id, cached/built/failed/error, store "
                       "key, seconds (wall clock here, waits for other kto processes' "
                       "locks included). Exit 0: every kernel is there; 1: a kernel did "
                       "not build; 2: configuration or infrastructure error (a series that "
                       "does not apply, a kconfig option rejected, no guest packages).")
    p.add_argument("name", nargs="?", default="default", help="run name (default: default)")
    options.add_runs(p)
    options.add_arches(p)
    options.add_source(p)
    add_job_selection(p, guests=False)
    p.add_argument("--background", action="store_true",
                   help="a build lane beside running tests: build at the lowest CPU "
                   "priority (nice 19; other kto builds run at 10, guests at 0) with a "
                   "build lock of its own, so the builds use mostly the cores foreground "
                   "kto processes leave idle and never make their builds wait; a "
                   "foreground kto that needs a kernel being built here waits for its "
                   "worktree and then finds it in the store. Nice values count only "
                   "inside one CPU autogroup (one session): started in a session of its "
                   "own (setsid), lower the session's autogroup too, as .ci/run does")
    p.add_argument("--logs", type=Path, metavar="DIR",
                   help="keep each job's build.log and build-metadata.json in DIR/JOB "
                   "(default: a failed build's first error lines are printed)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = options.with_source(load_run(args.runs, args.name), args)
    jobs, shard = selected_jobs(cfg, args)      # bad --arch/--job/--shard: exit 2 here
    if args.background:
        from orchestrator import build
        build.run_in_background()
    t0 = time.monotonic()
    progress(f"kto build {cfg.name}: {len(jobs)} job(s)"
             + (f" (shard {shard})" if shard else ""))
    rows = []
    if jobs:
        src = source.resolve(cfg.source, progress)
        progress(f"source: {src.origin} @ {src.commit[:12]} (Linux {src.version})")
        with tempfile.TemporaryDirectory(prefix="kto-build-") as tmp:
            logs = args.logs.resolve() if args.logs else Path(tmp)
            loaded: dict = {}
            for n, pj in enumerate(jobs, 1):
                progress(f"{pj.id}: job {n}/{len(jobs)}")
                rows.append(build_one(cfg, pj, src, loaded, logs / pj.id,
                                      keep=args.logs is not None))
    from orchestrator import verbosity
    if verbosity.LEVEL:
        print()             # apart from the progress lines
    for line in table(rows):
        print(line)
    counts = {s: sum(r["status"] == s for r in rows)
              for s in ("cached", "built", "failed", "error")}
    print(f"kto build {cfg.name}: {len(rows)} job(s), "
          + ", ".join(f"{v} {k}" for k, v in counts.items() if v or k in ("cached", "built"))
          + f" ({time.monotonic() - t0:.0f}s)")
    return exit_code(rows)


def build_one(cfg, pj, src, loaded: dict, out: Path, keep: bool) -> dict:
    """One planned job through pipeline.build_job: {id, status, key, seconds, error, log}.
    A kernel that does not build is "failed", any other fault of the job "error"."""
    say = (lambda m, i=pj.id, a=pj.arch: progress(m if i == a else f"[{i}] {m}"))
    job = JobResult(arch=pj.arch, source_commit=src.commit, job_id=pj.id,
                    variant=pj.variant, series=pj.series)
    t = time.monotonic()
    error = ""
    try:
        pipeline.build_job(pj.config(cfg), src, pipeline.job_series(pj, loaded),
                           arch_mod.get(pj.arch), job, out, say)
    except KtoError as e:
        error = str(e)
        progress(f"{pj.id}: error: {e}")
    b = job.build or {}
    if error:
        status = "error"
    else:
        status = _STATUS.get(b.get("status", ""), "error")
        error = b.get("error") or job.error
    log = out / "build.log"
    return {"id": pj.id, "status": status, "key": b.get("key") or "-",
            "seconds": round(time.monotonic() - t, 1), "error": error,
            "log": str(log) if keep and log.exists() else ""}


def table(rows: list[dict]) -> list[str]:
    """One line per job (id, status, key, seconds), a failure's detail indented under it."""
    if not rows:
        return []
    width = max(len(r["id"]) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r['id']:<{width}}  {r['status']:<6}  {r['key']:<20}  "
                     f"{r['seconds']:.1f}s")
        if r["status"] in ("failed", "error"):
            lines += [f"    {l}" for l in r["error"].splitlines() if l.strip()]
            if r["log"]:
                lines.append(f"    log: {r['log']}")
    return lines


def exit_code(rows: list[dict]) -> int:
    """kto run's convention: 2 for an infrastructure or configuration error, else 1 for a
    kernel that did not build, else 0."""
    if any(r["status"] == "error" for r in rows):
        return 2
    return 1 if any(r["status"] == "failed" for r in rows) else 0
