"""Benchmark the pipeline stages on the real x86_64 kernel and write a table.

Measures, in one run on this machine: a build-store hit, a rebuild after a one-file patch
(the floor of a bisect step), boot-to-SSH time (median of N boots) and the vmalloc fast
preset. Writes bench/out/pipeline.md and prints it.
Usage: python bench/pipeline_times.py [--boots N] [--arch ARCH]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator import arch as arch_mod, build, config, image, kconfig, source, toolchain, vm, workload  # noqa: E402
from orchestrator.patches import apply_series  # noqa: E402
from orchestrator.series import load_series  # noqa: E402
from table import markdown, write  # noqa: E402


def build_input(cfg, a, wt, src, patches):
    return build.BuildInput(arch=a, toolchain=toolchain.for_arch(a), tree=wt.path,
                            commit=wt.head(), tree_id=wt.tree_id(), base_commit=src.commit,
                            patches=patches, fragments=cfg.fragments_for(a.name),
                            runs_dir=cfg.runs_dir)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--arch", default="x86_64")
    args = ap.parse_args()
    cfg = config.load(REPO / "runs.yaml")["default"]
    a = arch_mod.get(args.arch)
    src = source.resolve(cfg.source)
    rows = []
    quiet = lambda m: None  # noqa: E731

    with source.Worktree(a.name) as wt:
        wt.checkout(src.commit)
        base = build.build(build_input(cfg, a, wt, src, []), quiet)
        t0 = time.monotonic()
        hit = build.build(build_input(cfg, a, wt, src, []), quiet)
        rows.append(("build, store hit (same key)", time.monotonic() - t0, hit.status))
        applied = apply_series(wt, src.commit, load_series(REPO / "patches/selftest/selftest.mbox"))
        inp = build_input(cfg, a, wt, src, applied.commits)
        key = build.build_key(inp, build.configure(inp, quiet))
        shutil.rmtree(build.store_dir(a, key), ignore_errors=True)   # force a real rebuild
        t0 = time.monotonic()
        one = build.build(inp, quiet)
        rows.append(("build, 2-patch series on one mm/*.c file (incremental)", time.monotonic() - t0,
                     f"{one.status}, {one.metadata.get('objects_compiled')} objects"))
        wt.checkout(src.commit)

    img = image.build_image(a, toolchain.for_arch(a), quiet)
    release = base.artifact("kernel.release").read_text().strip()
    boots = []
    with tempfile.TemporaryDirectory() as tmp:
        initrd = image.modules_initramfs(img, base.artifact("modules.cpio"), Path(tmp) / "i.cpio")
        for i in range(args.boots):
            with vm.Vm(vm.VmSpec(a, base.artifact("image"), initrd), Path(tmp) / f"c{i}.log") as g:
                r = g.boot(300, img.ssh_key)
                boots.append(r.seconds)
                if i == 0 and r.ok:
                    wl = workload.load("vmalloc")
                    ctx = workload.WorkloadContext(
                        arch=a, kernel_release=release,
                        kernel_config=kconfig.read_config(base.artifact("config").read_text()))
                    res = workload.run(g, wl, ctx)
                    rows.append(("vmalloc workload, fast preset", res.seconds,
                                 f"{res.status} {res.counts()}"))
    rows.insert(2, (f"boot to SSH (TCG), median of {len(boots)}", statistics.median(boots),
                    f"min {min(boots):.1f}s max {max(boots):.1f}s"))

    table = markdown(["stage", "seconds", "note"],
                     [(name, f"{secs:.1f}", note) for name, secs, note in rows], "lrl")
    text = (f"Pipeline stage times, {a.name}, {time.strftime('%Y-%m-%d')}, one run on this "
            "machine (2 cores):\n\n" + "\n".join(table) + "\n")
    write("pipeline.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
