"""kto check-series SERIES --run NAME: build and test the base and the tip of a series
and say which kernel reports the series adds, which were there before, and which it
fixes; for each new report, the patches whose hunks touch its stack."""
from __future__ import annotations

import argparse
import json

from orchestrator import known_issues, seriestest
from orchestrator.commands.run import progress
from orchestrator.results import new_run_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-series", help="does a series add kernel reports? (base vs tip)",
                       description="Build, boot and test the base and the tip of SERIES with "
                       "the run's kconfig and workloads, on each of its arches. Reports are "
                       "compared by title: new (tip only), known (tip only, but "
                       "known-issues.yaml lists it: a flaky stock-kernel report), "
                       "pre-existing (both), fixed (base only). Exit 1 when the series adds a report or breaks the build or "
                       "boot, 0 when it does not, 2 on bad input (e.g. a patch that does not "
                       "apply) or when the base itself cannot be tested.")
    seriestest.add_arguments(p)
    p.set_defaults(func=main)



def compare(base: list[str], tip: list[str], known=(), arch: str | None = None,
            run: str | None = None) -> dict[str, list[str]]:
    """Titles new at the tip, in both, gone at the tip. A tip-only title that
    known-issues.yaml lists (for this arch and run) is "known", not new: the stock kernel
    has it, and a flaky one (a KCSAN data race, a rare lockdep report) just did not show
    in the base's run; a series is only blamed for reports it adds."""
    tip_only = sorted(set(tip) - set(base))
    known_tip = [t for t in tip_only if known_issues.match(list(known), t, arch, run)]
    return {"new": [t for t in tip_only if t not in known_tip], "known": known_tip,
            "pre-existing": sorted(set(tip) & set(base)), "fixed": sorted(set(base) - set(tip))}


def main(args: argparse.Namespace) -> int:
    say = _sayer(args)
    cfg, src, series, arches = seriestest.prepare(args)
    out = new_run_dir(args.results.resolve(), f"check-series-{cfg.name}")
    n = len(series.patches)
    progress(f"kto check-series: {series.origin} ({n} patches) on run {cfg.name}: {out}")
    summary = {"series": series.origin, "run": cfg.name, "base": src.commit,
               "patches": [p.label() for p in series.patches], "arches": {}}
    known = known_issues.load_default(cfg.file.resolve().parent if cfg.file else None)
    lines, adds = [], False
    broken: list[str] = []        # the tip does not build/boot: the series' fault
    untestable: list[str] = []    # the base does not: nothing can be said
    for a in arches:
        tester = seriestest.StepTester(cfg, src, series, a, out, progress)
        base, tip = tester.run(0), tester.run(n)
        entry = {"base": _job(base), "tip": _job(tip)}
        summary["arches"][a] = entry
        lines.append(f"{a}: base {_state(base)}; tip {_state(tip)}")
        if not base.testable:
            untestable.append(f"{a}: the base cannot be tested ({base.why_untestable()})")
            continue
        if not tip.testable:
            broken.append(f"{a}: the series breaks the {tip.job.outcome.split('-')[0]} "
                          f"({tip.why_untestable()})")
            continue
        diff = compare(base.titles(), tip.titles(), known, a, cfg.name)
        entry.update(diff)
        entry["suspects"] = {}
        entry["suspect_details"] = {}
        for title in diff["new"]:
            adds = True
            rep = next(r for r in tip.job.unexpected_reports() if r.title == title)
            found = seriestest.suspects(series, rep)
            entry["suspects"][title] = [s.patch.label() for s in found]
            entry["suspect_details"][title] = [
                {"patch": s.patch.label(), "functions": s.functions, "stacks": s.stacks}
                for s in found]
            lines.append(f"  NEW          {title}")
            lines.append(f"               {rep.file}")
            for s in found:
                lines.append(f"               suspect: {s.describe()}")
            if not found:
                lines.append("               suspect: no patch touches a function in its "
                             "stacks")
        for title in diff["known"]:
            lines.append(f"  known        {title}  [known: "
                         f"{known_issues.match(known, title, a, cfg.name).reason}]")
        for title in diff["pre-existing"]:
            lines.append(f"  pre-existing {title}")
        for title in diff["fixed"]:
            lines.append(f"  fixed        {title}")
        failed = [w.workload for w in tip.job.workloads if w.status not in ("pass", "skip")]
        if failed:
            lines.append(f"  workloads failing at the tip: {', '.join(failed)}")
    (out / "check-series.json").write_text(json.dumps(summary, indent=2) + "\n")
    say()
    say(f"kto check-series {series.origin} ({n} patches) on {src.commit[:12]}, run {cfg.name}")
    for line in lines:
        say(line)
    for line in broken + untestable:
        say(line)
    if untestable:
        verdict, code = "the series could not be checked (the base does not build or boot)", 2
    elif broken:
        verdict, code = "the series breaks the build or the boot", 1
    elif adds:
        verdict, code = "the series adds kernel reports", 1
    else:
        verdict, code = "no new kernel reports", 0
    summary["verdict"] = verdict
    (out / "check-series.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"verdict: {verdict}")
    say(f"results: {out}")
    if args.json:
        print(json.dumps({**summary, "exit_code": code, "results": str(out)}, indent=2))
    return code


def _sayer(args):
    """Human lines: stdout, or stderr with --json (stdout is then the JSON alone)."""
    import sys
    if not args.json:
        return print
    progress.stream = sys.stderr
    return lambda *a, **k: print(*a, **k, file=sys.stderr)


def _state(step: seriestest.StepResult) -> str:
    if not step.testable:
        return step.why_untestable()
    return f"ok, {len(step.titles())} report title(s)"


def _job(step: seriestest.StepResult) -> dict:
    return {"outcome": step.job.outcome, "commit": step.job.commit,
            "titles": step.titles(), "directory": str(step.directory),
            "error": step.job.error}
