"""A run of a stock kernel that is already built finds it from the source commit alone:
no worktree lock, checkout or clean (they were a tenth of a cached `kto run default`,
and a wait of minutes whenever another run held the worktree)."""
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator import arch, build, cache, config, pipeline, source
from orchestrator.results import JobResult
from tests.kernels import built_kernel

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
HOLD = ("import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\ntime.sleep(600)\n")


def _build_job_while_worktree_is_held(cfg, tmp_path, timeout=60):
    """pipeline.build_job for x86_64 while another process holds the x86_64 worktree."""
    lock = cache.cache_root() / "trees" / "x86_64.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # Held by a process of its own: killing it frees the lock, so a build_job that did
    # wait for it still finishes and the test fails instead of hanging.
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    out: dict = {}
    try:
        assert holder.stdout.readline().strip() == "locked"
        src = source.resolve(cfg.source)
        job = JobResult(arch="x86_64")
        t = threading.Thread(target=lambda: out.update(built=pipeline.build_job(
            cfg, src, None, arch.get("x86_64"), job, tmp_path, lambda m: None), job=job))
        t.start()
        t.join(timeout)
        out["finished"] = not t.is_alive()
    finally:
        holder.kill()             # the lock goes with it: a blocked build_job goes on
        holder.wait()
    t.join()
    return out, src


def test_stored_stock_kernel_needs_no_worktree(tmp_path):
    cfg = config.load(REPO / "runs.yaml")["default"]
    stored = built_kernel("default", "x86_64")          # in the store (built if missing)
    out, src = _build_job_while_worktree_is_held(cfg, tmp_path)
    assert out["finished"], "build_job waited for the worktree lock"
    job = out["job"]
    assert job.build["status"] == "cached" and job.build["key"] == stored.key
    assert job.commit == src.commit
    assert out["built"].build.dir == stored.dir
    assert (tmp_path / "build-metadata.json").exists()


def test_kernel_not_in_store_is_not_found_without_a_build(tmp_path):
    """lookup() answers None (never builds) for a config whose build is not stored."""
    cfg = config.load(REPO / "runs.yaml")["default"]
    a = arch.get("x86_64")
    src = source.resolve(cfg.source)
    from orchestrator import toolchain
    from orchestrator.proc import git
    inp = build.BuildInput(
        arch=a, toolchain=toolchain.for_arch(a), tree=tmp_path / "no-tree", commit=src.commit,
        tree_id=git(source.repo(), "rev-parse", f"{src.commit}^{{tree}}"),
        base_commit=src.commit, patches=["not-applied"], fragments=cfg.fragments_for("x86_64"))
    assert build.lookup(inp) is None
    assert not (tmp_path / "no-tree").exists()
