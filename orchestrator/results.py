"""Results of a run: plain dataclasses, written as one directory per run with
summary.json, per-arch console logs, build metadata, workload outputs and one file per
kernel report.

summary.json follows ``formats/summary.schema.json`` (version 1): every path in it is
relative (files to the results directory, build directories to the cache root). Results
directories are untrusted input (they come back from CI artifacts): load() validates the
schema and that every file path resolves inside the directory, and names that become
paths (job ids, arches, workloads) are plain names."""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from orchestrator import known_issues
from orchestrator.errors import KtoError
from orchestrator.workload import WorkloadResult

SUMMARY_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "formats" / "summary.schema.json"


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
    # How many times the kernel printed it while this workload ran: one entry (and one
    # report file, the first) per title and workload, as syzbot keeps one per title; a
    # KCSAN kernel prints the same data race every few seconds for as long as it lasts.
    count: int = 1


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
    # When the run that made this job started (its shard's start): kept by kto merge, so
    # ids derived from it (KCIDB) are the same in a shard's files and the merged ones.
    started: str = ""
    # KCIDB patchset_hash of the applied series (formats/kcidb.patchset_hash), "" if none
    patchset_hash: str = ""

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
        for job in self.jobs:
            job.started = job.started or self.started
        data = {"version": SUMMARY_VERSION, **asdict(self)}
        del data["directory"]             # it is wherever summary.json is
        for job in data["jobs"]:
            for w in job["workloads"]:
                w.pop("output", None)     # kept in workloads/<name>.txt
            _relative_build(job["build"])
            job["reproducer"] = _relative_runs(job["reproducer"])
        path = self.directory / "summary.json"
        # readers never see half a file; writers never share a temporary
        tmp = path.with_name(f".summary.json.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        if formats:
            from orchestrator import formats as formats_mod
            formats_mod.write_all(self)
        return path


def _relative_build(build: dict) -> None:
    """The cache root in a build's dir and reproducer as ``$KTO_CACHE`` / relative, so a
    summary says nothing about the machine that wrote it."""
    from orchestrator.cache import cache_root
    root = str(cache_root().resolve())
    d = build.get("dir")
    if d and (d == root or d.startswith(root + "/")):
        build["dir"] = d[len(root) + 1:] or "."
    if build.get("reproducer"):
        build["reproducer"] = build["reproducer"].replace(root + "/", "$KTO_CACHE/")


def _relative_runs(reproducer: str) -> str:
    """``kto run ... --runs /abs/checkout/runs.yaml`` -> ``--runs runs.yaml`` when the
    file is in (or below) the current directory, as in CI where kto runs from the
    checkout: the command stays runnable there and names no machine path."""
    import shlex
    try:
        argv = shlex.split(reproducer)
    except ValueError:
        return reproducer
    if "--runs" in argv[:-1]:
        i = argv.index("--runs") + 1
        p = Path(argv[i])
        if p.is_absolute():
            try:
                argv[i] = str(p.relative_to(Path(os.getcwd()).resolve()))
            except ValueError:
                return reproducer
            return shlex.join(argv)
    return reproducer


_validator = None


def validate(data, path: Path) -> None:
    """KtoError naming the file and the JSON path of the first schema violation."""
    global _validator
    import jsonschema
    if _validator is None:
        _validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    try:
        err = jsonschema.exceptions.best_match(_validator.iter_errors(data))
    except RecursionError:
        raise KtoError(f"{path}: not a kto summary (nested too deeply)") from None
    if err is not None:
        where = err.json_path
        what = err.message if len(err.message) <= 200 else err.message[:200] + "..."
        raise KtoError(f"{path}: not a kto summary: {where}: {what}")


def inside(directory: Path, rel: str) -> Path | None:
    """directory/rel if it resolves (symlinks followed) inside directory, else None."""
    base = Path(directory).resolve()
    try:
        p = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return p if p == base or base in p.parents else None


def load(directory: Path) -> RunResult:
    """A RunResult read back from a results directory's summary.json. It must validate
    against the schema (older summaries without the version and matrix fields do; unknown
    fields from newer ones are ignored) and every path in it must stay inside the
    directory: a KtoError names the file and the JSON path otherwise."""
    from orchestrator.workload import TestResult
    directory = Path(directory)
    path = directory / "summary.json"
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise KtoError(f"{path}: cannot read ({e.strerror})") from None
    except RecursionError:
        raise KtoError(f"{path}: not a kto summary (nested too deeply)") from None
    except ValueError as e:     # JSONDecodeError, UnicodeDecodeError
        raise KtoError(f"{path}: not valid JSON ({e})") from None
    validate(data, path)
    for i, j in enumerate(data["jobs"]):
        for key in ("console_log",):
            if j.get(key) and inside(directory, j[key]) is None:
                raise KtoError(f"{path}: $.jobs[{i}].{key}: {j[key]!r} is outside the "
                               "results directory")
        for k, r in enumerate(j.get("reports", [])):
            if inside(directory, r["file"]) is None:
                raise KtoError(f"{path}: $.jobs[{i}].reports[{k}].file: {r['file']!r} is "
                               "outside the results directory")

    def pick(cls, d):
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in d.items() if k in names}

    jobs = []
    for j in data["jobs"]:
        job = JobResult(**pick(JobResult, {k: v for k, v in j.items()
                                           if k not in ("workloads", "reports")}))
        for w in j.get("workloads", []):
            wr = WorkloadResult(**pick(WorkloadResult, {"tests": [], "seconds": 0.0, **{
                k: v for k, v in w.items() if k != "tests"}}))
            wr.tests = [TestResult(**pick(TestResult, t)) for t in w.get("tests", [])]
            if wr.console_span is not None:
                wr.console_span = tuple(wr.console_span)
            job.workloads.append(wr)
        job.reports = [ReportEntry(**pick(ReportEntry, {"frame": None, "corrupted": False,
                                                        "workload": None, "first_line": "",
                                                        **r}))
                       for r in j.get("reports", [])]
        jobs.append(job)
    top = pick(RunResult, {k: v for k, v in data.items() if k not in ("jobs", "directory")})
    return RunResult(directory=directory, jobs=jobs, **top)


# Written into every results directory kto creates: `kto cache prune --results` deletes
# only directories that carry it (and a kto name and summary), never one it did not make.
MARKER = ".kto-results"
RUN_DIR_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*-\d{8}-\d{6}(-\d+)?")


def new_run_dir(root: Path, run: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", run):
        raise KtoError(f"run name {run!r} is not a plain name: refusing to make a directory")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{run}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{run}-{stamp}-{n}"
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by kto: kto cache prune --results may delete it\n")
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
            n = sum(r.count for r in same)
            out.append(f"    {title}" + (f"  x{n}" if n > 1 else "")
                       + f"  [{same[0].file}]" + (f"  [known: {k.reason}]" if k else ""))
    return out
