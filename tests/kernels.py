"""Real kernels for tests: build (or reuse from the store) a run's kernel for one arch.

Tests that make claims about real kernels get them here; the first call builds (minutes),
later calls are store hits (seconds)."""
from __future__ import annotations

from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import build, config, image, source, toolchain
from orchestrator.series import load_series

REPO = Path(__file__).resolve().parent.parent


def built_kernel(run: str = "default", arch: str = "x86_64") -> build.BuildResult:
    cfg = config.load(REPO / "runs.yaml")[run]
    a = arch_mod.get(arch)
    src = source.resolve(cfg.source)
    with source.Worktree(arch) as wt:
        patches = []
        if cfg.patches:
            from orchestrator.patches import apply_series
            patches = apply_series(wt, src.commit, load_series(cfg.patches)).commits
        else:
            wt.checkout(src.commit)
        r = build.build(build.BuildInput(
            arch=a, toolchain=toolchain.for_arch(a), tree=wt.path, commit=wt.head(),
            tree_id=wt.tree_id(), base_commit=src.commit, patches=patches,
            fragments=cfg.fragments_for(arch), kconfig_base=cfg.kconfig_base,
            runs_dir=cfg.runs_dir))
    assert r.ok, r.error
    return r


def guest_image(arch: str = "x86_64") -> image.GuestImage:
    a = arch_mod.get(arch)
    return image.build_image(a, toolchain.for_arch(a))
