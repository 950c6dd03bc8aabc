"""kto run NAME: build, boot, run workloads and collect reports for one run of runs.yaml."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from orchestrator import config, pipeline
from orchestrator.errors import ConfigError
from orchestrator.results import summary_lines

DEFAULT_RUNS = Path("runs.yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="build, boot and test one run from runs.yaml",
                       description="Build the run's kernel for each arch (patched if the run "
                       "has a series), boot it under QEMU, run its workloads, collect kernel "
                       "reports. Exit 0: clean; 1: test failures or kernel reports; 2: "
                       "configuration or infrastructure error.")
    p.add_argument("name", nargs="?", default="default", help="run name (default: default)")
    p.add_argument("--runs", type=Path, default=DEFAULT_RUNS, metavar="FILE",
                   help="runs file (default: ./runs.yaml)")
    p.add_argument("--arch", action="append", metavar="ARCH",
                   help="only this arch (repeatable; default: the run's arches)")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results root; each run gets a new directory (default: ./results)")
    p.set_defaults(func=main)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(args: argparse.Namespace) -> int:
    runs = config.load(args.runs)
    if args.name not in runs:
        raise ConfigError(f"{args.runs}: no run named {args.name!r} "
                          f"(runs: {', '.join(runs)})")
    cfg = runs[args.name]
    for a in args.arch or []:
        if a not in cfg.arches:
            raise ConfigError(f"run {args.name!r} has no arch {a!r} (arches: "
                              f"{', '.join(cfg.arches)})")
    t0 = time.monotonic()
    result = pipeline.run(cfg, args.results.resolve(), args.arch, progress)
    print()
    print(f"kto run {cfg.name}: {result.source}")
    for line in summary_lines(result):
        print(line)
    print(f"results: {result.directory}  ({time.monotonic() - t0:.0f}s)")
    return result.exit_code()
