"""kto bisect SERIES --run NAME: which patch of a series introduced the report(s) new at
its tip. The predicate is the report title (or --title REGEX), never "any crash";
steps that do not build or boot are skipped; flaky reports are re-run until the verdict
is confident (see orchestrator/bisect.py)."""
from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from pathlib import Path

from orchestrator import seriestest, source
from orchestrator.bisect import HIT, MISS, SKIP, Bisection, Run
from orchestrator.commands.run import progress
from orchestrator.errors import ConfigError, KtoError
from orchestrator.results import new_run_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bisect", help="find the patch of a series that introduced a report",
                       description="Bisect SERIES (or --good/--bad commits of a local git "
                       "tree) on one arch of the run: the first patch whose kernel prints the "
                       "report(s) new at the tip (by title, or --title REGEX). Exit 1 when a "
                       "culprit is found or narrowed down, 0 when the tip adds no report, "
                       "2 on bad input.")
    seriestest.add_arguments(p, series_required=False)
    p.add_argument("--title", metavar="REGEX",
                   help="bisect reports whose title matches (default: titles new at the tip)")
    p.add_argument("--good", metavar="REV",
                   help="with --bad and --tree: bisect the commits GOOD..BAD of a git tree")
    p.add_argument("--bad", metavar="REV", help="the commit that shows the report")
    p.add_argument("--tree", type=Path, metavar="PATH", help="local git tree for --good/--bad")
    p.add_argument("--max-runs", type=int, default=40, metavar="N",
                   help="cap on test runs (boots) in total (default: 40)")
    p.add_argument("--confidence", type=float, default=0.95, metavar="P",
                   help="confidence required to call a step good (default: 0.95)")
    p.set_defaults(func=main)



def _inputs(args):
    if args.good or args.bad or args.tree:
        if not (args.good and args.bad and args.tree) or args.series:
            raise ConfigError("bisect: give either SERIES, or --good REV --bad REV --tree PATH")
        if args.source:
            raise ConfigError("bisect: --source is the base of a SERIES; with --good/--bad "
                              "the base is --good in --tree")
        from orchestrator.commands import options
        from orchestrator.series import load_commit_range, pick
        series = load_commit_range(args.tree, f"{args.good}..{args.bad}")
        sel = options.selection(args)
        if sel.numbers:
            series = pick(series, sel)
        spec = source.SourceSpec(tarball=None, git=args.tree, ref=args.good)
        base = source.resolve(spec).commit
        return seriestest.prepare(args, series=series, base=base)
    if not args.series:
        raise ConfigError("bisect: give SERIES, or --good REV --bad REV --tree PATH")
    return seriestest.prepare(args)


def main(args: argparse.Namespace) -> int:
    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence {args.confidence}: must be between 0 and 1")
    if args.max_runs < 3:
        raise ConfigError(f"--max-runs {args.max_runs}: needs at least 3 (tip, base, a step)")
    title_re = None
    if args.title:
        try:
            title_re = re.compile(args.title)
        except re.error as e:
            raise ConfigError(f"--title {args.title!r}: invalid regular expression: {e}")
    from orchestrator.commands.check_series import _sayer
    say = _sayer(args)
    cfg, src, series, arches = _inputs(args)
    arch = arches[0]
    n = len(series.patches)
    out = new_run_dir(args.results.resolve(), f"bisect-{cfg.name}")
    t0 = time.monotonic()
    progress(f"kto bisect: {series.origin} ({n} patches) on {arch}, run {cfg.name}: {out}")
    tester = seriestest.StepTester(cfg, src, series, arch, out, progress)
    b = Bisection(n, confidence=args.confidence, max_runs=args.max_runs)

    # The predicate: a given regex, or the titles new at the tip (tip minus base).
    targets: set[str] = set()
    if title_re is None:
        tip = tester.run(n)
        base = tester.run(0)
        runs = 2
        while tip.testable and base.testable and not set(tip.titles()) - set(base.titles()) \
                and runs < b.tip_max_runs:
            tip = tester.run(n)       # a flaky report may need a few tries to show
            runs += 1
        for step in (tip, base):
            if step.job.outcome in ("infra-error", "interrupted"):
                raise KtoError(f"bisect: the {'tip' if step is tip else 'base'} could not "
                               f"run: {step.job.error}")
        if not (tip.testable and base.testable):
            bad = tip if not tip.testable else base
            raise ConfigError(f"bisect: the {'tip' if bad is tip else 'base'} cannot be "
                              f"tested ({bad.why_untestable()})")
        seen_base = {t for r in tester.results if r.index == 0 for t in r.titles()}
        targets = {t for r in tester.results if r.index == n for t in r.titles()} - seen_base
        if not targets:
            say(f"no report new at the tip of {series.origin} in {runs - 1} run(s): "
                "nothing to bisect")
            data = _write(out, args, series, b, tester, None, [], t0, src)
            if args.json:
                print(json.dumps({**data, "exit_code": 0, "results": str(out)}, indent=2))
            return 0

    def matches(title: str) -> bool:
        return bool(title_re.search(title)) if title_re else title in targets

    def as_run(step: seriestest.StepResult) -> Run:
        if step.job.outcome in ("infra-error", "interrupted"):
            # Not the patch's doing (kto or the machine): stop rather than guess.
            raise KtoError(f"bisect: step {b.label(step.index)} could not run: "
                           f"{step.job.error}")
        titles = step.titles()
        if not step.testable:
            # A build failure repeats; a boot failure may not (the step is retried once).
            return Run(SKIP, detail=step.why_untestable(), seconds=step.seconds,
                       built=step.built, booted=step.booted,
                       permanent=step.job.outcome == "build-failed")
        hit = [t for t in titles if matches(t)]
        return Run(HIT if hit else MISS, matched=hit, other=[t for t in titles if t not in hit],
                   seconds=step.seconds, built=step.built, booted=step.booted)

    for step in tester.results:
        b.record(step.index, as_run(step))
    while (k := b.next_step()) is not None:
        step = tester.run(k, stop_on=matches)
        run = as_run(step)
        b.record(k, run)
        progress(f"step {b.label(k)}: {run.outcome}"
                 + (f" ({', '.join(run.matched)})" if run.matched else "")
                 + (f" [unrelated: {', '.join(run.other)}]" if run.other else ""))
    verdict = b.result()
    report = _first_report(tester, verdict, matches)
    data = _write(out, args, series, b, tester, verdict, [report] if report else [], t0, src,
                  matches)
    _print(series, b, tester, verdict, report, out, args, t0, say)
    code = 1 if verdict.first_bad and verdict.status in ("found", "ambiguous",
                                                          "inconclusive") else 0
    if args.json:
        print(json.dumps({**data, "exit_code": code, "results": str(out)}, indent=2))
    return code


def _first_report(tester, verdict, matches):
    """The matching report at the first bad step (else anywhere), symbolized."""
    order = sorted(tester.results, key=lambda r: (r.index not in verdict.first_bad, -r.index))
    for step in order:
        for r in step.job.unexpected_reports():
            if matches(r.title):
                return r
    return None


def _reproducer(args) -> str:
    argv = ["kto", "bisect"]
    if args.series:
        argv.append(args.series)
    else:
        argv += ["--good", args.good, "--bad", args.bad, "--tree", str(args.tree)]
    from orchestrator import config
    from orchestrator.commands import options
    argv += options.selection_argv(args)
    argv += ["--run", args.run, "--runs", str(config.find_runs(args.runs).resolve())]
    if args.source:
        argv += ["--source", args.source]
    for a in args.arch or []:
        argv += ["--arch", a]
    if args.title:
        argv += ["--title", args.title]
    argv += ["--max-runs", str(args.max_runs), "--confidence", str(args.confidence)]
    return shlex.join(argv)


def _print(series, b, tester, verdict, report, out, args, t0, say=print):
    say()
    say(f"kto bisect {series.origin} ({len(series.patches)} patches), {tester.arch.name}")
    if verdict.status in ("found", "ambiguous", "inconclusive") and verdict.first_bad:
        for i in verdict.first_bad:
            p = series.patches[i - 1]
            say(f"{'culprit' if verdict.status == 'found' else 'candidate'}: {p.label()} "
                  f"by {p.author}")
    say(f"verdict: {verdict.summary}")
    if report is not None:
        say(f"report: {report.title}")
        for f in report.stack[:16]:
            say(f"    {f}")
        if verdict.status == "found":
            culprit = series.patches[verdict.first_bad[0] - 1]
            sus = [s for s in seriestest.suspects(series, report) if s.patch is culprit]
            if sus:
                say(f"hunk of {culprit.label()} touching the report "
                      f"({', '.join(sus[0].functions)}, in the {'; '.join(sus[0].stacks)}):")
                for line in sus[0].hunks[0].splitlines()[:30]:
                    say(f"    {line}")
            else:
                searched = ", ".join(n for n, _ in seriestest.report_stacks(report))
                say(f"{culprit.label()} touches no function in the report's stacks "
                      f"({searched})")
    say("steps:")
    for line in b.log():
        say(f"    {line}")
    say(f"cost: {tester.builds()} build(s), {tester.boots()} boot(s), "
          f"{len(tester.results)} test run(s), {time.monotonic() - t0:.0f}s")
    say(f"reproducer: {_reproducer(args)}")
    say(f"results: {out}")


def _culprit_hunk(series, verdict, reports):
    """Where the culprit's hunks meet the report: functions, stacks, hunk text."""
    if verdict is None or verdict.status != "found" or not reports:
        return None
    culprit = series.patches[verdict.first_bad[0] - 1]
    sus = [s for s in seriestest.suspects(series, reports[0]) if s.patch is culprit]
    if not sus:
        return {"patch": culprit.label(), "functions": [], "stacks": [], "hunk": ""}
    return {"patch": culprit.label(), "functions": sus[0].functions,
            "stacks": sus[0].stacks, "hunk": sus[0].hunks[0]}


def _write(out, args, series, b, tester, verdict, reports, t0, src, matches=None):
    data = {
        "series": series.origin, "base": src.commit, "arch": tester.arch.name,
        "patches": [{"label": p.label(), "author": p.author} for p in series.patches],
        "verdict": None if verdict is None else {
            "status": verdict.status, "first_bad": verdict.first_bad, "good": verdict.good,
            "rate": verdict.rate, "confidence": verdict.confidence,
            "summary": verdict.summary},
        "reports": [{"title": r.title, "stack": r.stack, "stacks": r.stacks, "file": r.file}
                    for r in reports],
        "culprit_hunk": _culprit_hunk(series, verdict, reports),
        "steps": [{"step": s.index, "outcome": s.job.outcome, "titles": s.titles(),
                   "hit": bool(matches and any(matches(t) for t in s.titles())),
                   "built": s.built, "booted": s.booted, "seconds": round(s.seconds, 1),
                   "build_seconds": s.job.build.get("seconds"),
                   "boot_seconds": s.job.boot.get("seconds"),
                   "workloads": [{"workload": w.workload, "status": w.status,
                                  "seconds": round(w.seconds, 1), "reason": w.reason}
                                 for w in s.job.workloads],
                   "directory": str(s.directory)} for s in tester.results],
        "log": b.log(),
        "builds": tester.builds(), "boots": tester.boots(),
        "seconds": round(time.monotonic() - t0, 1),
        "reproducer": _reproducer(args),
    }
    (out / "bisect.json").write_text(json.dumps(data, indent=2) + "\n")
    return data
