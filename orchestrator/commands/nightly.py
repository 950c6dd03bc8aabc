"""kto nightly RUN: run it like kto run, record it in the history database, and say per
report title what is new since the previous night, still present (since when), or fixed.
``--from-results DIR`` records and compares an existing results directory instead
(a merged sharded run, or a run made elsewhere)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from orchestrator import history, known_issues, results
from orchestrator.commands import options
from orchestrator.commands.run import (add_job_selection, execute, load_run,
                                       progress)
from orchestrator.errors import ConfigError
from orchestrator.results import summary_lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nightly", help="run (or take results), record history, say new/fixed",
                       description="Run a run like kto run (or take --from-results DIR), "
                       "record it in the history database and print each report title as "
                       "new, still present (since DATE) or fixed; titles in the known-issues "
                       "file do not make the night red. Exit 0: no new reports and no "
                       "failures; 1: new reports or test/build/boot failures; 2: "
                       "configuration or infrastructure error.")
    p.add_argument("name", nargs="?", help="run name (not with --from-results)")
    p.add_argument("--from-results", type=Path, metavar="DIR",
                   help="record and compare this results directory instead of running")
    options.add_runs(p)
    p.add_argument("--arch", action="append", metavar="ARCH", help="only this arch")
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results root (default: ./results)")
    add_job_selection(p)
    p.add_argument("--known", type=Path, metavar="FILE",
                   help="known issues (default: ./known-issues.yaml, else the one beside "
                   "the runs file in use)")
    p.add_argument("--db", type=Path, metavar="PATH",
                   help=f"history database (default: {history.default_db()})")
    p.add_argument("--key", metavar="NAME",
                   help="history key nights are compared under (default: the run's name)")
    p.add_argument("--json", action="store_true",
                   help="print the night's verdict as JSON on stdout (progress and the run "
                   "summary go to stderr)")
    p.add_argument("--strict", action="store_true",
                   help="also exit 1 for reports still present from earlier nights that "
                   "are not in the known-issues file")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.from_results and args.name:
        raise ConfigError("give a run name or --from-results DIR, not both")
    if not args.from_results and not args.name:
        raise ConfigError("give a run name (kto nightly RUN) or --from-results DIR")
    from orchestrator.commands.check_series import _sayer
    say = _sayer(args)
    if args.known:
        known = known_issues.load(args.known)
    else:
        from orchestrator import config
        try:
            beside = config.find_runs(args.runs).resolve().parent
        except ConfigError:
            beside = None       # --from-results needs no runs file
        known = known_issues.load_default(beside)
    db_path = args.db or history.default_db()
    t0 = time.monotonic()
    if args.from_results:
        result = results.load(args.from_results)
        from orchestrator import formats
        if not all((result.directory / f).exists() for f in formats.FILES):
            formats.write_all(result)      # results from before kto wrote them
    else:
        cfg = load_run(args.runs, args.name)
        result = execute(cfg, args)
        say()
        say(f"kto run {cfg.name}: {result.source}")
        for line in summary_lines(result, known):
            say(line)
    with history.History(db_path) as db:
        verdict = history.compare(db, result, known, args.key)
    prev = verdict.previous
    say()
    say(f"kto nightly {verdict.key}: {result.directory} (history run {verdict.run_id} in "
          f"{db_path}; " + (f"previous: run {prev['id']} started {prev['started']})"
                            if prev else "first recorded night)"))
    if verdict.already:
        say(f"these results are already recorded as history run {verdict.run_id} "
              f"({history.identity(result)}): nothing recorded; their verdict then:")
    for line in verdict.lines():
        say(line)
    code = verdict.exit_code(args.strict)
    if args.json:
        print(json.dumps(_verdict_json(verdict, result, db_path, code), indent=2))
    say(f"nightly: {['GREEN', 'RED', 'INFRA ERROR'][code]} (exit {code}, "
          f"{time.monotonic() - t0:.0f}s); report: {result.directory / 'index.html'}")
    return code


def _verdict_json(verdict, result, db_path, code: int) -> dict:
    return {
        "key": verdict.key, "run_id": verdict.run_id, "db": str(db_path),
        "results": str(result.directory),
        "previous": ({"started": verdict.previous["started"],
                      "directory": verdict.previous["directory"]}
                     if verdict.previous else None),
        "titles": [{"title": t.title, "status": t.status, "jobs": t.jobs,
                    "first_seen": t.first_seen, "last_seen": t.last_seen, "runs": t.runs,
                    "known": t.known.reason if t.known else None, "type": t.type}
                   for t in verdict.titles],
        "failures": verdict.failures, "infra": verdict.infra,
        "verdict": ["green", "red", "infra-error"][code], "exit_code": code,
    }
