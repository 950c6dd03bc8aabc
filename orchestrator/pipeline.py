"""One run, per arch: source + patches -> kconfig -> build -> guest image -> vm ->
workloads -> reports -> results. Faults at any stage are recorded outcomes."""
from __future__ import annotations

import dataclasses
import shlex
import sys
import threading
import time
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import build, image, kconfig, source, toolchain, vm, workload
from orchestrator.buildprogress import PhaseTicker
from orchestrator.config import RunConfig
from orchestrator.formats import kcidb
from orchestrator.errors import KtoError
from orchestrator.results import JobResult, ReportEntry, RunResult, new_run_dir, slug


def run(cfg: RunConfig, results_root: Path, arches: list[str] | None = None,
        progress=print, guests: int | None = None) -> RunResult:
    """Every job of the run (one per arch for a plain run), or only those of ``arches``."""
    from orchestrator import plan
    return run_planned(cfg, plan.expand(cfg, arches), results_root, progress, guests=guests)


def run_planned(cfg: RunConfig, jobs: list, results_root: Path, progress=print,
                shard: str = "", guests: int | None = None) -> RunResult:
    """Run planned jobs (orchestrator/plan.py: arch x kconfig variant x series, or one
    shard of them). Each job gets its own directory named by its id (the arch, for a plain
    run). Kernels build one at a time in plan order; each built job's guest runs beside the
    next build, up to ``guests`` guests at once (default: as many as cores and memory
    allow, orchestrator/scheduler.py)."""
    from orchestrator import scheduler
    result = RunResult(run=cfg.name, directory=new_run_dir(results_root, cfg.name),
                       shard=shard)
    if guests is None:
        guests = scheduler.guest_slots(cfg.vm.memory_mb, cfg.vm.cpus)
    guests = max(1, min(guests, len(jobs) or 1))
    progress(f"kto run {cfg.name}: {len(jobs)} job(s)"
             + (f" (shard {shard})" if shard else "") + f", results in {result.directory}"
             + (f", up to {guests} guests at once" if guests > 1 else ""))
    lock = threading.Lock()      # result.jobs and summary.json, shared with guest threads
    t0 = time.monotonic()

    def write():
        with lock:
            result.write()

    try:
        if not jobs:
            return result
        src = source.resolve(cfg.source, progress)
        result.source = f"{src.origin} @ {src.commit[:12]} (Linux {src.version})"
        series_cache: dict = {}

        def build_one(pj):
            job = JobResult(arch=pj.arch, source_commit=src.commit, job_id=pj.id,
                            variant=pj.variant, series=pj.series)
            job.reproducer = shlex.join(["kto", "run", cfg.name, "--job", pj.id,
                                         "--runs", str(cfg.file.resolve())]
                                        + (["--source", cfg.source_arg] if cfg.source_arg
                                           else []))
            with lock:
                result.jobs.append(job)
            say = (lambda m, i=pj.id, a=pj.arch: progress(m if i == a else f"[{i}] {m}"))
            progress(f"{pj.id}: job {len(result.jobs)}/{len(jobs)}")
            try:
                series = job_series(pj, series_cache)
                t = time.monotonic()
                built = build_job(pj.config(cfg), src, series, arch_mod.get(pj.arch), job,
                                  result.directory / pj.id, say)
                job.phases["build"] = [round(t - t0, 1), round(time.monotonic() - t0, 1)]
            except KtoError as e:
                job.outcome, job.error = "infra-error", str(e)
                progress(f"{pj.id}: error: {e}")
                built = None
            finally:
                write()
            return built

        stopping = threading.Event()

        def test_one(pj, built):
            t = time.monotonic()
            try:
                test_job(built)
                built.job.phases["guest"] = [round(t - t0, 1), round(time.monotonic() - t0, 1)]
            except KtoError as e:
                built.job.outcome, built.job.error = "infra-error", str(e)
                if not stopping.is_set():
                    progress(f"{pj.id}: error: {e}")
            finally:
                if stopping.is_set():     # its guest was killed under it: not its fault
                    built.job.outcome, built.job.error = "interrupted", "interrupted by the user"
                write()

        def interrupted():
            stopping.set()
            vm.stop_all(refuse_new=True)
            with lock:
                for job in result.jobs:
                    if job.outcome == "pending":
                        job.outcome, job.error = "interrupted", "interrupted by the user"

        scheduler.run(jobs, build_one, test_one, guests, interrupted)
    finally:
        result.finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write()
    return result


def job_series(pj, loaded: dict):
    """A planned job's series (each file loaded once into ``loaded``), None for a stock
    kernel."""
    if pj.patches is None:
        return None
    if pj.patches not in loaded:
        from orchestrator.series import load_series
        loaded[pj.patches] = load_series(pj.patches)
    return loaded[pj.patches]


@dataclasses.dataclass
class BuiltJob:
    """A job whose kernel built: what the guest side (test_job) needs."""
    cfg: RunConfig
    arch: arch_mod.Arch
    job: JobResult
    out: Path
    build: build.BuildResult
    image: image.GuestImage
    selftests_dir: Path | None
    kernel_config: dict
    progress: object


def run_job(cfg: RunConfig, src: source.SourceTree, series, arch: arch_mod.Arch,
            job: JobResult, out: Path, progress, stop_on=None) -> None:
    """One job start to end on this thread (kto bisect and check-series). ``stop_on``
    (a title predicate, kto bisect): end the guest once a matching report is printed."""
    built = build_job(cfg, src, series, arch, job, out, progress)
    if built is not None:
        test_job(built, stop_on)


def build_job(cfg: RunConfig, src: source.SourceTree, series, arch: arch_mod.Arch,
              job: JobResult, out: Path, progress) -> BuiltJob | None:
    """Source + patches -> kconfig -> build (+ the selftests and the guest image). None
    when the kernel did not build (recorded in ``job``)."""
    out.mkdir(parents=True, exist_ok=True)
    tc = toolchain.for_arch(arch)
    needs_selftests = any(workload.load(n).kind == "selftest" for n in cfg.workloads)
    stored = _stored_stock_build(cfg, src, arch, tc, needs_selftests) \
        if series is None else None
    if stored is not None:
        b, selftests_dir = stored
        job.commit = src.commit
    else:
        b, selftests_dir = _checkout_and_build(cfg, src, series, arch, tc, job,
                                               needs_selftests, progress)
    job.build = {"status": b.status, "key": b.key, "seconds": round(b.duration, 1),
                 "dir": str(b.dir) if b.dir else None, "error": b.error,
                 "reproducer": b.metadata.get("reproducer", "")}
    (out / "build-metadata.json").write_text(__import__("json").dumps(b.metadata, indent=2))
    if b.log and b.log.exists():
        (out / "build.log").write_bytes(b.log.read_bytes())
    if not b.ok:
        job.outcome, job.error = "build-failed", b.error
        progress(f"{arch.name}: build FAILED:\n{b.error}")
        return None
    progress(f"{arch.name}: build {b.status} in {b.duration:.0f}s ({b.key})")
    job.kernel_release = b.artifact("kernel.release").read_text().strip()
    img = image.build_image(arch, tc, lambda m: progress(f"{arch.name}: {m}"))
    return BuiltJob(cfg, arch, job, out, b, img, selftests_dir,
                    kconfig.read_config(b.artifact("config").read_text()), progress)


def _stored_stock_build(cfg: RunConfig, src: source.SourceTree, arch: arch_mod.Arch,
                        tc: toolchain.Toolchain, needs_selftests: bool):
    """(build, selftests dir) of a stock kernel (no series) whose build and selftests are
    both cached, found from the source commit alone: no worktree lock, checkout or clean
    (seconds of a cached run, and a wait whenever another run holds the worktree).
    None when anything would have to be built."""
    from orchestrator.proc import git
    tree_id = git(source.repo(), "rev-parse", f"{src.commit}^{{tree}}")
    slot = source.build_slot(arch.name, cfg.build_dir)
    inp = build.BuildInput(
        arch=arch, toolchain=tc, tree=source.Worktree(slot).path, commit=src.commit,
        tree_id=tree_id, base_commit=src.commit, patches=[],
        fragments=cfg.fragments_for(arch.name), kconfig_base=cfg.kconfig_base,
        variant=cfg.build_dir, runs_dir=cfg.runs_dir)
    b = build.lookup(inp)
    if b is None:
        return None
    selftests_dir = None
    if needs_selftests:
        from orchestrator import selftests
        selftests_dir = selftests.stored(tree_id, arch, tc,
                                         files=selftests.wanted_files(cfg.workloads))
        if selftests_dir is None:
            return None
    return b, selftests_dir


def _checkout_and_build(cfg, src, series, arch, tc, job, needs_selftests, progress):
    """Check out the source (and apply the series) in the build directory's worktree, then
    build."""
    with source.Worktree(source.build_slot(arch.name, cfg.build_dir)) as wt:
        if series is not None:
            from orchestrator.patches import apply_series
            applied = apply_series(wt, src.commit, series)
            job.patches = applied.labels
            job.patchset_hash = kcidb.patchset_hash(   # over the mails' exact bytes
                [p.text.encode(p.codec) for p in series.patches])
            progress(f"{arch.name}: applied {len(applied.commits)} patch(es) "
                     f"-> {applied.head[:12]}")
        else:
            wt.checkout(src.commit)
        job.commit = wt.head()
        inp = build.BuildInput(
            arch=arch, toolchain=tc, tree=wt.path, commit=job.commit, tree_id=wt.tree_id(),
            base_commit=src.commit, patches=job.patches and
            [c for c in _commits_since(wt, src.commit)], fragments=cfg.fragments_for(arch.name),
            kconfig_base=cfg.kconfig_base, variant=cfg.build_dir, runs_dir=cfg.runs_dir)
        b = build.build(inp, lambda m: progress(f"{arch.name}: {m}"))
        selftests_dir = None
        if b.ok and needs_selftests:
            from orchestrator import selftests
            # Only this run's workloads: a broken workload file it does not use is no concern.
            selftests_dir = selftests.build(wt.path, inp.tree_id, arch, tc,
                                            lambda m: progress(f"{arch.name}: {m}"),
                                            files=selftests.wanted_files(cfg.workloads))
    return b, selftests_dir


def test_job(bj: BuiltJob, stop_on=None) -> None:
    """Guest image -> vm -> workloads -> reports, for a built job."""
    cfg, arch, job, out, b, progress = bj.cfg, bj.arch, bj.job, bj.out, bj.build, bj.progress
    initrd = image.modules_initramfs(bj.image, b.artifact("modules.cpio"),
                                     out / "initramfs.cpio")
    console_log = out / "console.log"
    try:
        accel = vm.choose_accel(cfg.vm.accel, arch, b.artifact("image"), initrd,
                                bj.image.ssh_key, lambda m: progress(f"{arch.name}: {m}"))
        spec = vm.VmSpec(arch, b.artifact("image"), initrd, memory_mb=cfg.vm.memory_mb,
                         cpus=cfg.vm.cpus, accel=accel, cmdline_extra=list(cfg.cmdline))
        job.console_log = str(console_log.relative_to(out.parent))
        ctx = workload.WorkloadContext(arch=arch, kernel_release=job.kernel_release,
                                       kernel_config=bj.kernel_config,
                                       selftests_dir=bj.selftests_dir, nproc=cfg.vm.cpus)
        _run_guest(cfg, spec, bj.image, console_log, ctx, job, out, progress, stop_on)
    finally:
        initrd.unlink(missing_ok=True)
    _collect_reports(job, out, console_log, b.dir)


def _commits_since(wt: source.Worktree, base: str) -> list[str]:
    from orchestrator.proc import git
    return git(wt.path, "rev-list", "--reverse", f"{base}..HEAD").split()


def _run_guest(cfg, spec, img, console_log, ctx, job, out, progress, stop_on=None):
    """Boot, run the workloads, reboot after a hung, dead or crashed guest. The console
    is watched while workloads run (orchestrator/crashwatch.py): a fatal report ends the
    guest within seconds (the workload is a "crash"); a report matching ``stop_on`` ends
    the whole job (the workload is "stopped", the rest are not run)."""
    from orchestrator import crashwatch
    arch = spec.arch.name
    pending = [workload.load(n) for n in cfg.workloads]
    guest = watch = None
    try:
        while True:
            guest = vm.Vm(spec, console_log)
            with PhaseTicker(progress, f"{arch}: boot"):
                boot = guest.boot(cfg.timeouts.boot, img.ssh_key)
            job.boot = {"outcome": boot.outcome, "seconds": round(boot.seconds, 1),
                        "accel": spec.accel, "detail": boot.detail}
            if not boot.ok:
                job.outcome, job.error = "boot-failed", boot.detail
                progress(f"{arch}: boot {boot.outcome} after {boot.seconds:.0f}s")
                return
            progress(f"{arch}: booted in {boot.seconds:.1f}s ({spec.accel})")
            watch = crashwatch.Watcher(guest.console, guest.kill, stop_on=stop_on,
                                       progress=lambda m: progress(f"{arch}: {m}"))
            watch.start()
            while pending:
                wl = pending.pop(0)
                why = wl.requires.unmet(arch, ctx.kernel_config)
                if why:
                    job.workloads.append(workload.WorkloadResult(wl.name, "skip", [], 0.0, why))
                    continue
                progress(f"{arch}: workload {wl.name} ({cfg.presets.get(wl.name, wl.preset)})")
                start = guest.console.line_count()
                wl.timeout = min(wl.timeout, cfg.timeouts.workload)
                with PhaseTicker(progress, f"{arch}: workload {wl.name}"):
                    res = workload.run(guest, wl, dataclasses.replace(
                        ctx, preset=cfg.presets.get(wl.name)))
                res.console_span = (start, guest.console.line_count())
                if watch.trigger is None and not guest.alive():
                    # The guest died on its own (a panic): the watcher's last look at the
                    # console says whether it was a fatal report, not a hang.
                    watch.close()
                if watch.trigger is not None:
                    _stopped_early(res, watch.trigger)
                job.workloads.append(res)
                (out / "workloads").mkdir(exist_ok=True)
                (out / "workloads" / f"{wl.name}.txt").write_text(res.output)
                progress(f"{arch}: workload {wl.name}: {res.status} "
                         f"{res.counts()} in {res.seconds:.0f}s {res.reason}")
                if watch.trigger is not None and watch.trigger.kind == "match":
                    for rest in pending:
                        job.workloads.append(workload.WorkloadResult(
                            rest.name, "skip", [], 0.0, "not run: the bisect step already "
                            "printed the report it looks for"))
                    pending = []
                if not guest.alive() or res.status in ("timeout", "error", "crash"):
                    break      # reboot a hung, dead or crashed guest for the next workload
            watch.close()
            if not pending:
                break
            guest.stop()
        job.outcome = "ok"
        from orchestrator import interactive
        interactive.hold(guest, img.ssh_key, out, arch, progress)     # kto run --keep
    finally:
        if watch is not None:
            watch.close()
        if guest is not None:
            guest.stop()


def _stopped_early(res: "workload.WorkloadResult", trigger) -> None:
    """The console watcher ended the guest during this workload: say so, whatever the
    workload runner made of the dead guest (an SSH command that never returned)."""
    res.status = "crash" if trigger.kind == "crash" else "stopped"
    res.reason = trigger.describe()     # what the runner said was about the killed guest


def _collect_reports(job: JobResult, out: Path, console_log: Path, build_dir: Path) -> None:
    """Find every report in the console log, symbolize it with the build's vmlinux and
    modules, attribute it to the workload running at the time, and write one file each."""
    from orchestrator.report import Report, format_report, parse
    from orchestrator.report.dedup import format_frame
    from orchestrator.report.stacks import MAIN, stacks
    from orchestrator.report.symbolize import symbolize_build
    if not console_log.exists():
        return
    text = console_log.read_bytes().decode("utf-8", "replace")
    spans = [(getattr(w, "console_span", None), w.workload) for w in job.workloads]
    by_name = {w: workload.load(w) for _, w in spans}
    (out / "reports").mkdir(exist_ok=True)
    reports = parse(text)
    # The other stacks each report carries, symbolized in the same addr2line calls.
    extra = [[s for s in stacks(r.text) if s.name != MAIN] for r in reports]
    holders = [Report("", "", None, frames=s.frames) for ex in extra for s in ex]
    _, warning = symbolize_build(reports + holders, build_dir)
    for s, h in zip((s for ex in extra for s in ex), holders):
        s.frames = h.frames
    if warning:
        job.notes.append(warning)
    first: dict[tuple[str, str | None], ReportEntry] = {}
    for rep, other in zip(reports, extra):
        wl = None
        for span, name in spans:
            if span and span[0] <= rep.start_line <= span[1]:
                wl = name
        if (rep.title, wl) in first:          # the same report again: counted, not stored
            first[rep.title, wl].count += 1
            continue
        name = f"reports/{len(first) + 1:03d}-{slug(rep.title)}.txt"
        (out / name).write_text(format_report(rep) + "\n\n" + rep.text + "\n")
        job.reports.append(ReportEntry(
            title=rep.title, type=rep.type, frame=rep.frame, corrupted=rep.corrupted,
            workload=wl, expected=bool(wl and by_name[wl].expected_reports),
            file=f"{out.name}/{name}", first_line=rep.text.strip().splitlines()[0]
            if rep.text.strip() else rep.title, stack=[format_frame(f) for f in rep.frames],
            stacks={s.name: [format_frame(f) for f in s.frames] for s in other}))
        first[rep.title, wl] = job.reports[-1]
