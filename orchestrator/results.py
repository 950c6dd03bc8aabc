"""Results of a run: plain dataclasses, written as one directory per run with
summary.json, per-arch console logs, build metadata, workload outputs and one file per
kernel report."""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from orchestrator import known_issues
from orchestrator.workload import WorkloadResult


@dataclass
class ReportEntry:
    title: str
    type: str
    frame: str | None
    corrupted: bool
    workload: str | None      # the workload running when it was printed (None: boot)
    expected: bool            # provoked on purpose by that workload (e.g. kasan-kunit)
    file: str                 # report file, relative to the run directory
    first_line: str
    stack: list[str] = field(default_factory=list)   # symbolized: func+off/size (file:line)
    # The report's other stacks, symbolized, by name (orchestrator/report/stacks.py):
    # lockdep chain entries and held locks, KASAN allocation/free stacks, KCSAN's other task.
    stacks: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class JobResult:
    arch: str
    outcome: str = "pending"  # ok | build-failed | boot-failed | infra-error | interrupted
    source_commit: str = ""
    commit: str = ""          # after patches
    kernel_release: str = ""
    patches: list[str] = field(default_factory=list)
    build: dict = field(default_factory=dict)     # status, key, seconds, error, dir
    boot: dict = field(default_factory=dict)      # outcome, seconds, accel, detail
    workloads: list[WorkloadResult] = field(default_factory=list)
    reports: list[ReportEntry] = field(default_factory=list)
    console_log: str = ""
    reproducer: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)   # warnings that did not stop the job
    # Matrix job (orchestrator/plan.py); "" in summaries of per-arch runs: the id is the arch.
    job_id: str = ""
    variant: str = ""
    series: str = ""
    # Wall clock per phase: {"build": [start, end], "guest": [start, end]}, seconds since
    # the run started; guests overlap later builds (orchestrator/scheduler.py).
    phases: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.job_id or self.arch

    def unexpected_reports(self) -> list[ReportEntry]:
        return [r for r in self.reports if not r.expected]

    def failed(self) -> bool:
        return self.outcome != "ok" or bool(self.unexpected_reports()) or any(
            w.status not in ("pass", "skip") for w in self.workloads)


@dataclass
class RunResult:
    run: str
    directory: Path
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime()))
    finished: str = ""
    source: str = ""
    jobs: list[JobResult] = field(default_factory=list)
    shard: str = ""           # "I/N" when this directory holds one shard of the run
    merged_from: list[str] = field(default_factory=list)   # kto merge: the shard dirs

    def exit_code(self) -> int:
        if any(j.outcome in ("infra-error",) for j in self.jobs):
            return 2
        return 1 if any(j.failed() for j in self.jobs) else 0

    def write(self, formats: bool = True) -> Path:
        """summary.json, then junit.xml, kcidb.json and index.html beside it."""
        data = asdict(self)
        data["directory"] = str(self.directory)
        for job in data["jobs"]:
            for w in job["workloads"]:
                w.pop("output", None)     # kept in workloads/<name>.txt
        path = self.directory / "summary.json"
        tmp = path.with_name(".summary.json.tmp")     # readers never see half a file
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
        if formats:
            from orchestrator import formats as formats_mod
            formats_mod.write_all(self)
        return path


def load(directory: Path) -> RunResult:
    """A RunResult read back from a results directory's summary.json (older summaries
    without the matrix fields load too; unknown fields from newer ones are ignored)."""
    from orchestrator.errors import KtoError
    from orchestrator.workload import TestResult
    directory = Path(directory)
    path = directory / "summary.json"
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise KtoError(f"{path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise KtoError(f"{path}: not valid JSON ({e})") from None

    def pick(cls, d):
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in d.items() if k in names}

    try:
        jobs = []
        for j in data.get("jobs", []):
            job = JobResult(**pick(JobResult, {k: v for k, v in j.items()
                                               if k not in ("workloads", "reports")}))
            for w in j.get("workloads", []):
                wr = WorkloadResult(**pick(WorkloadResult, {k: v for k, v in w.items()
                                                            if k != "tests"}),
                                    tests=[TestResult(**pick(TestResult, t))
                                           for t in w.get("tests", [])])
                if wr.console_span is not None:
                    wr.console_span = tuple(wr.console_span)
                job.workloads.append(wr)
            job.reports = [ReportEntry(**pick(ReportEntry, r)) for r in j.get("reports", [])]
            jobs.append(job)
        top = pick(RunResult, {k: v for k, v in data.items() if k not in ("jobs", "directory")})
        return RunResult(directory=directory, jobs=jobs, **top)
    except TypeError as e:
        raise KtoError(f"{path}: not a kto summary ({e})") from None


def new_run_dir(root: Path, run: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{run}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{run}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def slug(title: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:limit] or "report"


def _fmt_s(seconds: float) -> str:
    seconds = float(seconds or 0)
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s" if seconds >= 60 else f"{seconds:.1f}s"


def summary_lines(result: RunResult, known: list | None = None) -> list[str]:
    """The human summary; a report matching a ``known`` issue (known_issues.py) is still
    listed and counted, with the entry's reason beside it."""
    out = []
    for j in result.jobs:
        b = j.build
        line = [f"{j.id}: {j.outcome}"]
        if b:
            line.append(f"build {b.get('status')} {_fmt_s(b.get('seconds', 0))}")
        if j.boot:
            line.append(f"boot {j.boot.get('outcome')} {_fmt_s(j.boot.get('seconds', 0))} "
                        f"({j.boot.get('accel', '?')})")
        out.append(", ".join(line))
        if j.error:
            out.append(f"  error: {j.error.splitlines()[0] if j.error else ''}")
        for w in j.workloads:
            counts = " ".join(f"{k}={v}" for k, v in w.counts().items())
            out.append(f"  workload {w.workload}: {w.status} ({counts or 'no tests'}) "
                       f"{_fmt_s(w.seconds)}{' - ' + w.reason if w.reason else ''}")
        expected = [r for r in j.reports if r.expected]
        unexpected = j.unexpected_reports()
        out.append(f"  reports: {len(unexpected)} unexpected"
                   + (f", {len(expected)} expected (provoked by a workload)" if expected else ""))
        by_title: dict[str, list[ReportEntry]] = {}
        for r in unexpected:
            by_title.setdefault(r.title, []).append(r)
        for title, same in list(by_title.items())[:20]:
            k = known_issues.match(known or [], title, j.arch, result.run)
            out.append(f"    {title}" + (f"  x{len(same)}" if len(same) > 1 else "")
                       + f"  [{same[0].file}]" + (f"  [known: {k.reason}]" if k else ""))
    return out
