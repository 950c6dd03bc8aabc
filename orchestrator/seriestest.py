"""Testing a series at a given step: the first k patches on the base, built, booted and
run through the run's workloads by the same pipeline as ``kto run``. Used by
``kto check-series`` (base vs tip) and ``kto bisect`` (any step, repeated for flaky
reports). Steps share the arch's worktree slot, build directory and ccache, so a step
rebuilds only what its patches changed, and a repeated step is a build-store hit."""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import pipeline, source
from orchestrator.config import RunConfig
from orchestrator.results import JobResult, ReportEntry
from orchestrator.series import Patch, Series

# Job outcomes that mean "this step cannot be tested" (a bisect skip), not a verdict.
UNTESTABLE = ("build-failed", "boot-failed")


@dataclass
class StepResult:
    index: int
    job: JobResult
    directory: Path
    built: bool           # a real build ran (not a store hit)
    booted: bool
    seconds: float

    @property
    def testable(self) -> bool:
        return self.job.outcome not in UNTESTABLE

    def titles(self) -> list[str]:
        """Titles of the reports the step printed that no workload provoked on purpose."""
        return sorted({r.title for r in self.job.unexpected_reports()})

    def why_untestable(self) -> str:
        first = (self.job.error or self.job.boot.get("detail", "") or "").strip().splitlines()
        return f"{self.job.outcome}: {first[0] if first else ''}".strip().rstrip(":")


def prefix(series: Series, k: int) -> Series | None:
    """The series with its first k patches (None for k = 0: the base)."""
    if k == 0:
        return None
    return dataclasses.replace(series, patches=series.patches[:k])


class StepTester:
    """Runs steps of one series on one arch and keeps what it cost."""

    def __init__(self, cfg: RunConfig, src: source.SourceTree, series: Series, arch: str,
                 directory: Path, progress=print):
        self.cfg = dataclasses.replace(cfg, patches=None)
        self.src, self.series = src, series
        self.arch = arch_mod.get(arch)
        self.directory = directory
        self.progress = progress
        self.results: list[StepResult] = []

    @property
    def total(self) -> int:
        return len(self.series.patches)

    def label(self, k: int) -> str:
        return "base" if k == 0 else f"{k}/{self.total}"

    def run(self, k: int, stop_on=None) -> StepResult:
        """Step k, once. ``stop_on(title)``: end the guest as soon as a report with a
        matching title is on the console (kto bisect: the step is a hit already)."""
        n = sum(r.index == k for r in self.results) + 1
        out = self.directory / f"step-{k:02d}-run-{n}" / self.arch.name
        job = JobResult(arch=self.arch.name, source_commit=self.src.commit)
        t0 = time.monotonic()
        tag = f"{self.arch.name} {self.label(k)} run {n}"
        try:
            pipeline.run_job(self.cfg, self.src, prefix(self.series, k), self.arch, job, out,
                             lambda m: self.progress(f"[{tag}] {m}"), stop_on=stop_on)
        except Exception as e:        # noqa: BLE001 - recorded like pipeline.run does
            from orchestrator.errors import KtoError
            if not isinstance(e, KtoError):
                raise
            job.outcome, job.error = "infra-error", str(e)
        res = StepResult(k, job, out, built=job.build.get("status") == "ok",
                         booted=bool(job.boot), seconds=time.monotonic() - t0)
        self.results.append(res)
        return res

    def builds(self) -> int:
        return sum(r.built for r in self.results)

    def boots(self) -> int:
        return sum(r.booted for r in self.results)


# -- which patches touch a report's stack --

_FRAME = re.compile(r"^([A-Za-z0-9_.]+?)(?:\.(?:constprop|isra|part|cold|llvm)\.\d+)*(?:\+0x|\s|$)")
_SOURCE = re.compile(r"\(([^():\s]+):(\d+)\)")


MAIN_STACK = "main stack"


def stack_functions(frames: list[str]) -> list[str]:
    funcs = []
    for f in frames:
        m = _FRAME.match(f)
        if m and m.group(1) not in funcs:
            funcs.append(m.group(1))
    return funcs


def report_stacks(report: ReportEntry) -> list[tuple[str, list[str]]]:
    """(name, frames) of every stack of a report, the main one first."""
    return [(MAIN_STACK, report.stack), *report.stacks.items()]


@dataclass
class Suspect:
    patch: Patch
    functions: list[str] = field(default_factory=list)   # stack functions its hunks touch
    hunks: list[str] = field(default_factory=list)       # those hunks' text
    stacks: list[str] = field(default_factory=list)      # names of the stacks they are in
    rank: int = 0          # position of the first matching stack (0: the main stack)

    def describe(self) -> str:
        return (f"{self.patch.label()} touches {', '.join(self.functions)} "
                f"(in the {'; '.join(self.stacks)})")


def suspects(series: Series, report: ReportEntry) -> list[Suspect]:
    """Patches whose hunks touch a function of any of the report's (symbolized) stacks:
    by the function a hunk changes, or by its @@ context, or by the source line of a
    frame. Ranked: patches touching the main stack first, then by the order of the
    stacks in the report (lockdep chain entries, allocation/free stacks...), then in
    series order."""
    searched = [(name, stack_functions(frames),
                 [(m.group(1), int(m.group(2))) for f in frames for m in [_SOURCE.search(f)] if m])
                for name, frames in report_stacks(report)]
    out = []
    for p in series.patches:
        hit_funcs, hit_hunks, hit_stacks, rank = [], [], [], len(searched)
        for h in p.hunks():
            touched = h.functions()
            hunk_hit = False
            for k, (name, funcs, lines) in enumerate(searched):
                names = [f for f in funcs if f in touched]
                # A frame's file:line inside the hunk's new range (the tip's line numbers).
                in_range = any(path == h.path and h.new_start <= ln < h.new_start + h.new_len
                               for path, ln in lines)
                if names or in_range:
                    hunk_hit = True
                    rank = min(rank, k)
                    hit_funcs += [n for n in names if n not in hit_funcs]
                    if name not in hit_stacks:
                        hit_stacks.append(name)
            if hunk_hit:
                hit_hunks.append(h.text)
        if hit_hunks:
            out.append(Suspect(p, hit_funcs or ["a changed line in the stack"], hit_hunks,
                               hit_stacks, rank))
    out.sort(key=lambda s: (s.rank, s.patch.index))
    return out


# -- command-line set-up shared by check-series and bisect --

def add_arguments(p, series_required: bool = True) -> None:
    p.add_argument("series", nargs=None if series_required else "?",
                   help="mbox, b4 .mbx, directory of .patch files, or TREE:REV1..REV2")
    p.add_argument("--run", required=True, metavar="NAME",
                   help="run of runs.yaml giving source, kconfig, workloads and VM settings")
    from orchestrator.commands import options
    options.add_runs(p)
    options.add_arches(p)
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results root (default: ./results)")
    options.add_source(p)
    options.add_selection(p)
    p.add_argument("--json", action="store_true",
                   help="print the verdict as JSON on stdout (progress goes to stderr)")


def prepare(args, series: Series | None = None, base: str | None = None):
    """(run config, source, series, arches) from the arguments; checks that the series
    applies (exit 2 naming the patch that does not) before anything is built."""
    from orchestrator.commands.run import load_run
    from orchestrator.errors import ConfigError
    from orchestrator.patches import apply_series
    from orchestrator.series import load_series
    from orchestrator.commands import options
    cfg = options.with_source(load_run(args.runs, args.run), args)
    if cfg.source_arg:
        args.source = cfg.source_arg       # reproducers name the commit that was tested
    arches = args.arch or cfg.arches
    for a in arches:
        if a not in cfg.arches:
            raise ConfigError(f"run {cfg.name!r} has no arch {a!r} (arches: "
                              f"{', '.join(cfg.arches)})")
    if base is not None:
        src = source.SourceTree(commit=base, version=source.kernel_version(base),
                                origin=f"{series.origin if series else ''} base")
    else:
        src = source.resolve(cfg.source)
    series = series or load_series(options.series_spec(args.series, args.runs),
                                   select=options.selection(args))
    with source.Worktree("apply") as wt:
        apply_series(wt, src.commit, series)
        wt.checkout(src.commit)
    return cfg, src, series, arches
