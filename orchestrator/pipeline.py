"""One run, per arch: source + patches -> kconfig -> build -> guest image -> vm ->
workloads -> reports -> results. Faults at any stage are recorded outcomes."""
from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import build, image, kconfig, source, toolchain, vm, workload
from orchestrator.config import RunConfig
from orchestrator.errors import KtoError
from orchestrator.results import JobResult, ReportEntry, RunResult, new_run_dir, slug


def run(cfg: RunConfig, results_root: Path, arches: list[str] | None = None,
        progress=print) -> RunResult:
    """Every job of the run (one per arch for a plain run), or only those of ``arches``."""
    from orchestrator import plan
    return run_planned(cfg, plan.expand(cfg, arches), results_root, progress)


def run_planned(cfg: RunConfig, jobs: list, results_root: Path, progress=print,
                shard: str = "") -> RunResult:
    """Run planned jobs (orchestrator/plan.py: arch x kconfig variant x series, or one
    shard of them). Each job gets its own directory named by its id (the arch, for a plain
    run)."""
    result = RunResult(run=cfg.name, directory=new_run_dir(results_root, cfg.name),
                       shard=shard)
    progress(f"kto run {cfg.name}: {len(jobs)} job(s)"
             + (f" (shard {shard})" if shard else "") + f", results in {result.directory}")
    try:
        if not jobs:
            return result
        src = source.resolve(cfg.source, progress)
        result.source = f"{src.origin} @ {src.commit[:12]} (Linux {src.version})"
        series_cache: dict = {}
        for pj in jobs:
            job = JobResult(arch=pj.arch, source_commit=src.commit, job_id=pj.id,
                            variant=pj.variant, series=pj.series)
            job.reproducer = shlex.join(["kto", "run", cfg.name, "--job", pj.id,
                                         "--runs", str(cfg.file.resolve())])
            result.jobs.append(job)
            progress(f"{pj.id}: job {len(result.jobs)}/{len(jobs)}")
            try:
                series = None
                if pj.patches is not None:
                    if pj.patches not in series_cache:
                        from orchestrator.series import load_series
                        series_cache[pj.patches] = load_series(pj.patches)
                    series = series_cache[pj.patches]
                run_job(pj.config(cfg), src, series, arch_mod.get(pj.arch), job,
                        result.directory / pj.id, lambda m, i=pj.id, a=pj.arch: progress(
                            m if i == a else f"[{i}] {m}"))
            except KtoError as e:
                job.outcome, job.error = "infra-error", str(e)
                progress(f"{pj.id}: error: {e}")
            except KeyboardInterrupt:
                job.outcome, job.error = "interrupted", "interrupted by the user"
                raise
            finally:
                result.write()
    finally:
        result.finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        result.write()
    return result

def run_job(cfg: RunConfig, src: source.SourceTree, series, arch: arch_mod.Arch,
            job: JobResult, out: Path, progress) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tc = toolchain.for_arch(arch)
    # -- source + patches -> kconfig -> build --
    with source.Worktree(arch.name) as wt:
        if series is not None:
            from orchestrator.patches import apply_series
            applied = apply_series(wt, src.commit, series)
            job.patches = applied.labels
            progress(f"{arch.name}: applied {len(applied.commits)} patch(es) "
                     f"-> {applied.head[:12]}")
        else:
            wt.checkout(src.commit)
        job.commit = wt.head()
        inp = build.BuildInput(
            arch=arch, toolchain=tc, tree=wt.path, commit=job.commit, tree_id=wt.tree_id(),
            base_commit=src.commit, patches=job.patches and
            [c for c in _commits_since(wt, src.commit)], fragments=cfg.fragments_for(arch.name),
            kconfig_base=cfg.kconfig_base, variant=cfg.build_dir)
        b = build.build(inp, lambda m: progress(f"{arch.name}: {m}"))
        selftests_dir = None
        if b.ok and any(workload.load(n).kind == "selftest" for n in cfg.workloads):
            from orchestrator import selftests
            selftests_dir = selftests.build(wt.path, inp.tree_id, arch, tc,
                                            lambda m: progress(f"{arch.name}: {m}"))
    job.build = {"status": b.status, "key": b.key, "seconds": round(b.duration, 1),
                 "dir": str(b.dir) if b.dir else None, "error": b.error,
                 "reproducer": b.metadata.get("reproducer", "")}
    (out / "build-metadata.json").write_text(__import__("json").dumps(b.metadata, indent=2))
    if b.log and b.log.exists():
        (out / "build.log").write_bytes(b.log.read_bytes())
    if not b.ok:
        job.outcome, job.error = "build-failed", b.error
        progress(f"{arch.name}: build FAILED:\n{b.error}")
        return
    progress(f"{arch.name}: build {b.status} in {b.duration:.0f}s ({b.key})")
    release = b.artifact("kernel.release").read_text().strip()
    job.kernel_release = release
    final_config = kconfig.read_config(b.artifact("config").read_text())

    # -- guest image -> vm --
    img = image.build_image(arch, tc, lambda m: progress(f"{arch.name}: {m}"))
    initrd = image.modules_initramfs(img, b.artifact("modules.cpio"), out / "initramfs.cpio")
    try:
        accel = vm.choose_accel(cfg.vm.accel, arch, b.artifact("image"), initrd, img.ssh_key,
                                lambda m: progress(f"{arch.name}: {m}"))
        spec = vm.VmSpec(arch, b.artifact("image"), initrd, memory_mb=cfg.vm.memory_mb,
                         cpus=cfg.vm.cpus, accel=accel)
        console_log = out / "console.log"
        job.console_log = str(console_log.relative_to(out.parent))
        ctx = workload.WorkloadContext(arch=arch, kernel_release=release,
                                       kernel_config=final_config, selftests_dir=selftests_dir,
                                       nproc=cfg.vm.cpus)
        _run_guest(cfg, spec, img, console_log, ctx, job, out, progress)
    finally:
        initrd.unlink(missing_ok=True)
    _collect_reports(job, out, console_log, b.dir)


def _commits_since(wt: source.Worktree, base: str) -> list[str]:
    from orchestrator.proc import git
    return git(wt.path, "rev-list", "--reverse", f"{base}..HEAD").split()


def _run_guest(cfg, spec, img, console_log, ctx, job, out, progress):
    arch = spec.arch.name
    pending = [workload.load(n) for n in cfg.workloads]
    guest = None
    try:
        while True:
            guest = vm.Vm(spec, console_log)
            boot = guest.boot(cfg.timeouts.boot, img.ssh_key)
            job.boot = {"outcome": boot.outcome, "seconds": round(boot.seconds, 1),
                        "accel": spec.accel, "detail": boot.detail}
            if not boot.ok:
                job.outcome, job.error = "boot-failed", boot.detail
                progress(f"{arch}: boot {boot.outcome} after {boot.seconds:.0f}s")
                return
            progress(f"{arch}: booted in {boot.seconds:.1f}s ({spec.accel})")
            while pending:
                wl = pending.pop(0)
                why = wl.requires.unmet(arch, ctx.kernel_config)
                if why:
                    job.workloads.append(workload.WorkloadResult(wl.name, "skip", [], 0.0, why))
                    continue
                progress(f"{arch}: workload {wl.name} ({cfg.presets.get(wl.name, wl.preset)})")
                start = guest.console.line_count()
                wl.timeout = min(wl.timeout, cfg.timeouts.workload)
                res = workload.run(guest, wl, dataclasses.replace(
                    ctx, preset=cfg.presets.get(wl.name)))
                res.console_span = (start, guest.console.line_count())
                job.workloads.append(res)
                (out / "workloads").mkdir(exist_ok=True)
                (out / "workloads" / f"{wl.name}.txt").write_text(res.output)
                progress(f"{arch}: workload {wl.name}: {res.status} "
                         f"{res.counts()} in {res.seconds:.0f}s {res.reason}")
                if not guest.alive() or res.status in ("timeout", "error"):
                    break      # reboot a hung or dead guest for the next workload
            if not pending:
                break
            guest.stop()
        job.outcome = "ok"
    finally:
        if guest is not None:
            guest.stop()


def _collect_reports(job: JobResult, out: Path, console_log: Path, build_dir: Path) -> None:
    """Find every report in the console log, symbolize it with the build's vmlinux and
    modules, attribute it to the workload running at the time, and write one file each."""
    from orchestrator.report import format_report, parse
    from orchestrator.report.dedup import format_frame
    from orchestrator.report.symbolize import symbolize_build
    if not console_log.exists():
        return
    text = console_log.read_bytes().decode("utf-8", "replace")
    spans = [(getattr(w, "console_span", None), w.workload) for w in job.workloads]
    by_name = {w: workload.load(w) for _, w in spans}
    (out / "reports").mkdir(exist_ok=True)
    reports, warning = symbolize_build(parse(text), build_dir)
    if warning:
        job.notes.append(warning)
    for i, rep in enumerate(reports, 1):
        wl = None
        for span, name in spans:
            if span and span[0] <= rep.start_line <= span[1]:
                wl = name
        name = f"reports/{i:03d}-{slug(rep.title)}.txt"
        (out / name).write_text(format_report(rep) + "\n\n" + rep.text + "\n")
        job.reports.append(ReportEntry(
            title=rep.title, type=rep.type, frame=rep.frame, corrupted=rep.corrupted,
            workload=wl, expected=bool(wl and by_name[wl].expected_reports),
            file=f"{out.name}/{name}", first_line=rep.text.strip().splitlines()[0]
            if rep.text.strip() else rep.title, stack=[format_frame(f) for f in rep.frames]))
