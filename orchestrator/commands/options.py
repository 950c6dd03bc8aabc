"""Options several commands share: where runs.yaml is, the developer's own source tree,
and which patches of a series to take. One definition each, so help texts agree."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from orchestrator import config
from orchestrator.series import Selection, parse_numbers

RUNS_HELP = ("runs file (default: $KTO_RUNS, else ./runs.yaml, else kto's own runs.yaml; "
             "kconfigs/ and patches/ are the ones beside it)")


def add_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=Path, default=None, metavar="FILE", help=RUNS_HELP)


def add_arches(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", action="append", metavar="ARCH",
                   help="only this arch (repeatable; default: the run's arches)")


def add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="PATH[@REV]",
                   help="test your own kernel git tree instead of the run's source: its HEAD "
                   "(refused if tracked files have uncommitted changes), or commit REV")


def add_selection(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--partial", action="store_true",
                   help="take the patches that are there, in order, when some of the series "
                   "is missing (a lone [PATCH 3/6] from a thread)")
    g.add_argument("--patches", metavar="LIST",
                   help="take only these patches, in this order: numbers n of [PATCH n/m] "
                   "(or positions), e.g. 1,3-5")


def selection(args) -> Selection:
    numbers = parse_numbers(args.patches) if getattr(args, "patches", None) else ()
    return Selection(partial=bool(getattr(args, "partial", False)), numbers=numbers)


def selection_argv(args) -> list[str]:
    """The selection flags again, for reproducer command lines."""
    if getattr(args, "patches", None):
        return ["--patches", args.patches]
    return ["--partial"] if getattr(args, "partial", False) else []


def series_spec(text: str, runs: Path | None = None) -> str:
    """A series argument as given, or, when nothing of that name is here, the project's
    (``patches/examples/x.mbox`` or ``examples/x.mbox`` beside the runs file in use)."""
    if not text or Path(text).exists() or Path(text).is_absolute():
        return text
    try:
        top = config.find_runs(runs).resolve().parent
    except Exception:       # no runs file anywhere: keep the argument as given
        return text
    for candidate in (top / text, top / "patches" / text):
        if candidate.exists():
            return str(candidate)
    return text


def with_source(cfg: config.RunConfig, args) -> config.RunConfig:
    """The run with --source (if given) as its source."""
    text = getattr(args, "source", None)
    if not text:
        return cfg
    from orchestrator import localtree
    spec = localtree.parse(text)
    # Reproducers pin the commit that was tested, not the tree's moving HEAD.
    return dataclasses.replace(cfg, source=spec, source_arg=f"{spec.git}@{spec.ref}")
