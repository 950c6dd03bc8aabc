"""kto shell RUN: the run's kernel (from the build store, built if needed) booted with the
same guest image, modules and workload binaries, and an interactive shell in it over SSH.
The console log is captured the whole time; when the shell exits the guest is stopped and
the kernel reports it printed are extracted, as after kto run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import image, interactive, pipeline, source, vm, workload
from orchestrator.buildprogress import PhaseTicker
from orchestrator.commands import options
from orchestrator.commands.run import load_run, progress
from orchestrator.errors import ConfigError
from orchestrator.results import JobResult, new_run_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shell", help="boot a run's kernel and open a shell in the guest",
                       description="Build (or take from the build store) the kernel of RUN "
                       "for one arch, boot it under QEMU with the run's guest image, modules "
                       "and workload binaries (in " + workload.GUEST_DIR + "), and open an "
                       "interactive shell over SSH. The console log is saved; when the "
                       "shell exits, QEMU is stopped and kernel reports are extracted. "
                       "Exit 0: no kernel report; 1: reports, or the kernel did not build "
                       "or boot; 2: bad input.")
    p.add_argument("name", nargs="?", default="default", help="run name (default: default)")
    p.add_argument("--arch", metavar="ARCH", help="arch to boot (default: the run's first)")
    p.add_argument("--series", metavar="SERIES",
                   help="boot the kernel with this series applied instead of the run's own "
                   "patches (mbox, .mbx, directory, or TREE:REV1..REV2)")
    options.add_selection(p)
    options.add_source(p)
    options.add_runs(p)
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                   help="results root; the session gets shell-RUN-<time>/ARCH/ with the "
                   "console log and reports (default: ./results)")
    p.set_defaults(func=main)


def _series(cfg, args):
    from orchestrator.series import load_series
    sel = options.selection(args)
    if args.series:
        return load_series(options.series_spec(args.series, args.runs), select=sel)
    if sel:
        raise ConfigError("--partial/--patches select patches of --series SERIES")
    return load_series(cfg.patches) if cfg.patches else None


def main(args: argparse.Namespace) -> int:
    cfg = options.with_source(load_run(args.runs, args.name), args)
    arch_name = args.arch or cfg.arches[0]
    if arch_name not in cfg.arches:
        raise ConfigError(f"run {cfg.name!r} has no arch {arch_name!r} (arches: "
                          f"{', '.join(cfg.arches)})")
    a = arch_mod.get(arch_name)
    series = _series(cfg, args)
    src = source.resolve(cfg.source, progress)
    out = new_run_dir(args.results.resolve(), f"shell-{cfg.name}") / a.name
    job = JobResult(arch=a.name, source_commit=src.commit)
    built = pipeline.build_job(cfg, src, series, a, job, out, progress)
    if built is None:
        print(f"kto shell: the kernel did not build: {job.error}")
        return 1
    initrd = image.modules_initramfs(built.image, built.build.artifact("modules.cpio"),
                                     out / "initramfs.cpio")
    console_log = out / "console.log"
    code = 0
    try:
        accel = vm.choose_accel(cfg.vm.accel, a, built.build.artifact("image"), initrd,
                                built.image.ssh_key, lambda m: progress(f"{a.name}: {m}"))
        spec = vm.VmSpec(a, built.build.artifact("image"), initrd,
                         memory_mb=cfg.vm.memory_mb, cpus=cfg.vm.cpus, accel=accel)
        with vm.Vm(spec, console_log) as guest:
            with PhaseTicker(progress, f"{a.name}: boot"):
                boot = guest.boot(cfg.timeouts.boot, built.image.ssh_key)
            job.boot = {"outcome": boot.outcome, "seconds": round(boot.seconds, 1),
                        "accel": accel, "detail": boot.detail}
            if not boot.ok:
                job.outcome, job.error = "boot-failed", boot.detail
                print(f"kto shell: boot {boot.outcome} after {boot.seconds:.0f}s:\n"
                      f"{boot.detail}")
                code = 1
            else:
                progress(f"{a.name}: booted {job.kernel_release} in {boot.seconds:.1f}s "
                         f"({accel})")
                where = _upload_workload_files(guest, built.selftests_dir)
                argv = interactive.ssh_argv(guest, built.image.ssh_key, out)
                modules = [w.module for w in map(workload.load, cfg.workloads)
                           if w.kind == "module" and w.module]
                print(f"kto shell: {cfg.name} on {a.name}, Linux {job.kernel_release}"
                      + (f"; workload binaries in {where}" if where else "")
                      + (f"; workload modules: {', '.join(modules)} (load with kto-insmod "
                         f"/lib/modules/{job.kernel_release}/.../NAME.ko)" if modules else "")
                      + f"; console log: {console_log}; leave with exit or Ctrl-D",
                      flush=True)
                status = interactive.interactive_shell(argv)
                job.outcome = "ok"
                if status == 255 and not guest.alive():
                    job.notes.append("the guest died during the session")
    finally:
        initrd.unlink(missing_ok=True)
    pipeline._collect_reports(job, out, console_log, built.build.dir)
    (out / "shell.json").write_text(json.dumps({
        "run": cfg.name, "arch": a.name, "source": src.origin, "commit": job.commit,
        "kernel_release": job.kernel_release, "boot": job.boot, "notes": job.notes,
        "reports": [{"title": r.title, "file": r.file} for r in job.reports]}, indent=2) + "\n")
    print(f"kto shell: guest stopped; console log: {console_log}")
    for r in job.reports:
        print(f"  report: {r.title}  ({out.parent / r.file})")
    print(f"kto shell: {len(job.reports)} kernel report(s)")
    return 1 if job.reports else code


def _upload_workload_files(guest: vm.Vm, selftests_dir: Path | None) -> str:
    """The run's compiled selftest programs, where the workloads put them."""
    if selftests_dir is None:
        return ""
    guest.run(["mkdir", "-p", workload.GUEST_DIR, f"{workload.GUEST_DIR}/compat"], timeout=60)
    for f in sorted(selftests_dir.rglob("*")):
        rel = f.relative_to(selftests_dir)
        if f.is_file() and rel.parts[0] != "build-errors":
            if len(rel.parts) > 1:
                guest.run(["mkdir", "-p", f"{workload.GUEST_DIR}/{rel.parent}"], timeout=60)
            guest.put(f, f"{workload.GUEST_DIR}/{rel}", 0o755)
    return workload.GUEST_DIR
