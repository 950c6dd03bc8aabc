"""kto run NAME: build, boot, run workloads and collect reports for one run of runs.yaml."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

from orchestrator import config, known_issues, pipeline
from orchestrator.commands import options
from orchestrator.errors import ConfigError
from orchestrator.results import summary_lines

DEFAULT_RUNS = None     # config.find_runs: $KTO_RUNS, ./runs.yaml, kto's own runs.yaml


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="build, boot and test one run from runs.yaml",
                       description="Build the run's kernel for each arch (patched if the run "
                       "has a series), boot it under QEMU, run its workloads, collect kernel "
                       "reports. Exit 0: clean; 1: test failures or kernel reports; 2: "
                       "configuration or infrastructure error.")
    p.add_argument("name", nargs="?", default="default", help="run name (default: default)")
    options.add_runs(p)
    options.add_arches(p)
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results root; each run gets a new directory (default: ./results)")
    options.add_source(p)
    p.add_argument("--keep", action="store_true",
                   help="leave each guest up after its workloads, with the ssh command to "
                   "get in, until Ctrl-C (reports from what you do there are collected too)")
    add_job_selection(p)
    p.set_defaults(func=main)


def add_job_selection(p: argparse.ArgumentParser, guests: bool = True) -> None:
    p.add_argument("--shard", metavar="I/N",
                   help="only shard I of N (kto plan RUN --shards N shows which jobs)")
    p.add_argument("--job", action="append", metavar="ID",
                   help="only this job id from kto plan (repeatable)")
    if not guests:
        return
    p.add_argument("--guests", type=_positive, metavar="N",
                   help="run up to N guests at once beside the (one at a time) kernel "
                   "builds (default: as many as the cores and memory allow)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return n


# The periodic lines (build.py's and buildprogress.PhaseTicker's) that rewrite one
# status line on a terminal: "build: 3m20s, 812/1900 objects ...", "boot: 8s elapsed".
_TICK = re.compile(r"build: \d+(?:m\d\d)?s, |: \d+(?:m\d\d)?s elapsed$")


class Progress:
    """Timestamped lines. On a terminal, build progress (the frequent "N objects" lines)
    rewrites one status line instead of scrolling; everything else is a line of its own.
    Plain lines only when the stream is not a terminal or TERM=dumb; nothing with -q."""

    def __init__(self, stream=None):
        self._stream = stream
        self.status = False
        self.lock = threading.Lock()   # guests report from their own threads

    @property
    def stream(self):
        return self._stream or sys.stdout

    @stream.setter
    def stream(self, value):
        self._stream = value

    @property
    def tty(self) -> bool:
        from orchestrator import verbosity
        live = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        verbosity.LIVE = live and verbosity.LEVEL == 1
        return verbosity.LIVE

    def __call__(self, msg: str) -> None:
        from orchestrator import verbosity
        if verbosity.LEVEL == 0:
            return
        with self.lock:
            self._write(msg)

    def _write(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        transient = self.tty and "\n" not in msg and bool(_TICK.search(msg))
        if self.status:
            self.stream.write("\r\x1b[K")
        if transient:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write(line[:max(width - 1, 20)])
        else:
            self.stream.write(line + "\n")
        self.status = transient
        self.stream.flush()


progress = Progress()


def load_run(runs_file: Path | None, name: str):
    """Run NAME of the runs file (found by config.find_runs when not given)."""
    runs_file, runs = config.find_and_load(runs_file)
    if name not in runs:
        raise ConfigError(f"{runs_file}: no run named {name!r} (runs: {', '.join(runs)})")
    return runs[name]


def execute(cfg, args, progress=progress):
    """The run as kto run does it: the run's arches (or --arch), narrowed to --shard/--job.
    Used by kto run and kto nightly."""
    from orchestrator import plan
    for a in args.arch or []:
        if a not in cfg.arches:
            raise ConfigError(f"run {cfg.name!r} has no arch {a!r} (arches: "
                              f"{', '.join(cfg.arches)})")
    if not args.shard and not args.job and plan.is_trivial(cfg):
        return pipeline.run(cfg, args.results.resolve(), args.arch, progress, args.guests)
    jobs, shard = selected_jobs(cfg, args)
    return pipeline.run_planned(cfg, jobs, args.results.resolve(), progress, shard,
                                args.guests)


def selected_jobs(cfg, args) -> tuple[list, str]:
    """The run's jobs narrowed to --arch, --job and --shard (kto run and kto build), and
    the shard's label ("I/N", "" without --shard)."""
    from orchestrator import plan
    jobs = plan.expand(cfg, args.arch)
    if args.job:
        jobs = plan.select(jobs, args.job)
    shard = ""
    if args.shard:
        i, n = plan.parse_shard(args.shard)
        jobs, shard = plan.shard(jobs, i, n), f"{i}/{n}"
    return jobs, shard


def main(args: argparse.Namespace) -> int:
    cfg = options.with_source(load_run(args.runs, args.name), args)
    # A bad file fails now, not after the run.
    known = known_issues.load_default(cfg.file.resolve().parent if cfg.file else None)
    t0 = time.monotonic()
    if args.keep:
        from orchestrator import interactive
        with interactive.kept_guests():
            result = execute(cfg, args)
    else:
        result = execute(cfg, args)
    print()
    print(f"kto run {cfg.name}: {result.source}")
    for line in summary_lines(result, known):
        print(line)
    print(f"results: {result.directory}  ({time.monotonic() - t0:.0f}s)")
    return result.exit_code()
