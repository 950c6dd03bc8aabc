"""kto apply SERIES [--base REV | --source PATH[@REV]]: apply a series onto an exact base
in a throwaway worktree and print the resulting commit, or say which patch does not apply
and why. Needs no runs.yaml: without one the base is the default source (the tarball)."""
from __future__ import annotations

import argparse

from orchestrator import config, source
from orchestrator.commands import options
from orchestrator.errors import ConfigError
from orchestrator.patches import apply_series
from orchestrator.proc import git
from orchestrator.series import load_series

APPLY_SLOT = "apply"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="apply a patch series onto a base commit",
                       description="Apply SERIES (mbox, b4 .mbx, directory of .patch files "
                       "with optional quilt 'series' file, or TREE:REV1..REV2) with git am "
                       "onto the base, in a throwaway worktree. Prints the resulting commit; "
                       "exit 2 naming the patch, file and hunk that do not apply.")
    p.add_argument("series", help="the series (or one patch of it, with --partial/--patches)")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--base", metavar="REV",
                      help="base commit in kto's source cache (default: the source of --run)")
    options.add_source(base)
    p.add_argument("--run", default="default",
                   help="run whose source is the default base (default: default; without "
                   "any runs.yaml, the default source tarball)")
    options.add_runs(p)
    options.add_selection(p)
    p.set_defaults(func=main)


def resolve_base(args) -> str:
    if args.base:
        sha = git(source.repo(), "rev-parse", "-q", "--verify", f"{args.base}^{{commit}}",
                  check=False)
        if not sha:
            raise ConfigError(f"--base {args.base}: no such commit in the kto source cache "
                              f"({source.repo()})")
        return sha
    if getattr(args, "source", None):
        from orchestrator import localtree
        return source.resolve(localtree.parse(args.source)).commit
    try:
        runs_file = config.find_runs(args.runs)
    except ConfigError:
        if args.runs is not None:
            raise
        return source.resolve(source.SourceSpec()).commit    # no runs.yaml anywhere
    runs = config.load(runs_file)
    if args.run not in runs:
        raise ConfigError(f"{runs_file}: no run named {args.run!r}")
    return source.resolve(runs[args.run].source).commit


def main(args: argparse.Namespace) -> int:
    series = load_series(options.series_spec(args.series, args.runs),
                         select=options.selection(args))
    base = resolve_base(args)
    with source.Worktree(APPLY_SLOT) as wt:
        applied = apply_series(wt, base, series)
        for label, commit in zip(applied.labels, applied.commits):
            print(f"{commit[:12]} {label}")
        print(f"applied {len(applied.commits)} patch(es) onto {base[:12]}: {applied.head}")
        wt.checkout(base)    # leave the throwaway worktree clean
    return 0
