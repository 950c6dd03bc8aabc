"""kto plan RUN [--shards N]: the run's jobs (arch x kconfig variant x series), and with
--shards which shard runs each (what `kto run RUN --shard I/N` will run)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator import plan
from orchestrator.commands import options
from orchestrator.commands.run import load_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="list a run's jobs, and their shards with --shards N",
                       description="Expand a run of runs.yaml into its jobs: arches x kconfig "
                       "variants x (stock kernel, series...); every job runs all of the run's "
                       "workloads in one guest. --shards N deals the jobs, sorted by id, "
                       "to N shards, one arch and build directory per shard where possible: `kto run RUN --shard I/N` runs shard I.")
    p.add_argument("name", help="run name")
    options.add_runs(p)
    p.add_argument("--shards", type=int, metavar="N", help="partition into N shards")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = load_run(args.runs, args.name)
    jobs = plan.expand(cfg)
    where = plan.shard_index(jobs, args.shards) if args.shards is not None else {}
    if args.json:
        print(json.dumps([{"id": j.id, "arch": j.arch, "variant": j.variant,
                           "series": j.series, "workloads": list(j.workloads),
                           "build_dir": j.build_dir,
                           **({"shard": where[j.id]} if where else {})} for j in jobs],
                         indent=1))
        return 0
    width = max(len(j.id) for j in jobs)
    print(f"run {cfg.name}: {len(jobs)} job(s)"
          + (f" in {args.shards} shard(s)" if where else ""))
    for j in jobs:
        print(("" if not where else f"shard {where[j.id]}/{args.shards}  ")
              + f"{j.id:<{width}}  arch={j.arch} variant={j.variant or 'default'} "
              f"series={j.series or ('(run patches)' if j.patches else 'none')} "
              f"workloads={','.join(j.workloads) or 'none'}")
    if where:
        empty = [i for i in range(1, args.shards + 1) if i not in where.values()]
        if empty:
            print(f"note: shard(s) {', '.join(map(str, empty))} have no jobs "
                  f"({len(jobs)} jobs < {args.shards} shards)")
    return 0
