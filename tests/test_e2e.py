"""End to end on real kernels: build x86_64 (cached after the first run), boot under
QEMU, SSH in, run workloads, parse results and reports. Also the faults: a panicking
and a hanging guest are outcomes, Ctrl-C leaves no QEMU behind."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import arch, build, config, pipeline, vm
from tests.kernels import built_kernel, guest_image
from tests.signals import sigint_default

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MARKER = "kto-selftest: boot marker applied by patches/selftest/boot-marker.mbox"


# QEMU inherits the environment: a tag set in this process (and passed to the kto
# subprocesses) tells this test session's guests from any other kto run on the machine.
TAG = f"kto-test-{os.getpid()}-{time.time_ns()}"
os.environ["KTO_TEST_TAG"] = TAG


def qemu_processes() -> list[str]:
    """QEMU processes started by this test session (directly or via a kto subprocess)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if not cmdline[0].rsplit(b"/", 1)[-1].startswith(b"qemu-system-"):
                continue
            if f"KTO_TEST_TAG={TAG}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(f"{proc.name} {b' '.join(cmdline).decode(errors='replace')}")
        except OSError:
            continue      # exited meanwhile
    return found


@pytest.fixture(scope="module")
def runs():
    return config.load(REPO / "runs.yaml")


@pytest.fixture(scope="module")
def default_run(runs, tmp_path_factory):
    return pipeline.run(runs["default"], tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def selftest_run(runs, tmp_path_factory):
    return pipeline.run(runs["selftest"], tmp_path_factory.mktemp("results"), ["x86_64"])


def test_default_run_builds_boots_and_runs_vmalloc(default_run):
    [job] = default_run.jobs
    assert job.outcome == "ok", job.error
    assert job.build["status"] in ("ok", "cached")
    assert job.boot["outcome"] == "ready" and job.boot["seconds"] > 0
    assert job.kernel_release.startswith("6.12.")
    [wl] = job.workloads
    assert wl.workload == "vmalloc"
    names = {t.name: t.status for t in wl.tests}
    # Every test of the fast preset reported a Summary line.
    assert len(names) >= 10, names
    assert names["fix_size_alloc_test"] == "pass"
    assert names["align_shift_alloc_test"] == "xfail"
    assert all(s in ("pass", "xfail") for s in names.values()), names
    assert wl.status == "pass"
    # The expected allocation-failure trace is not a kernel report.
    assert job.unexpected_reports() == [], [r.title for r in job.reports]
    console = (default_run.directory / job.console_log).read_text(errors="replace")
    assert vm.READY_MARK in console and "Linux version 6.12" in console
    assert MARKER not in console          # no series in this run
    summary = json.loads((default_run.directory / "summary.json").read_text())
    assert summary["jobs"][0]["source_commit"] == job.source_commit
    meta = json.loads((default_run.directory / "x86_64" / "build-metadata.json").read_text())
    assert meta["key"] == job.build["key"] and meta["exit_status"] == 0
    assert meta["reproducer"].startswith("make ") and "O=" in meta["reproducer"]
    assert default_run.exit_code() == 0


def test_identical_build_is_reused(default_run):
    """A second build of the same inputs is a store hit, not a rebuild."""
    t0 = time.monotonic()
    r = built_kernel("default", "x86_64")
    assert r.status == "cached" and r.key == default_run.jobs[0].build["key"]
    assert time.monotonic() - t0 < 60


def test_patched_kernel_shows_marker_and_kasan_reports_are_found(selftest_run):
    [job] = selftest_run.jobs
    assert job.outcome == "ok", job.error
    assert job.patches == [
        'patch 1/2 "mm/vmalloc: print a boot marker for kto\'s patch test"',
        'patch 2/2 "mm/vmalloc: take two mutexes in both orders at boot (kto lockdep test)"']
    assert job.commit != job.source_commit
    console = (selftest_run.directory / job.console_log).read_text(errors="replace")
    assert MARKER in console
    kunit = next(w for w in job.workloads if w.workload == "kasan-kunit")
    passed = [t.name for t in kunit.tests if t.status == "pass"]
    assert len(passed) >= 20 and "kmalloc_oob_right" in passed, kunit.tests[:5]
    kasan = [r for r in job.reports if r.title.startswith("KASAN: ")]
    # One entry per title (22 titles on this kernel), each with how often it was printed.
    assert len(kasan) >= 20 and sum(r.count for r in kasan) >= 100
    titles = {r.title for r in kasan}
    assert any("slab-out-of-bounds" in t for t in titles), titles
    assert any("use-after-free" in t for t in titles), titles
    # They happened while kasan-kunit ran, which provokes them on purpose.
    assert all(r.workload == "kasan-kunit" and r.expected for r in kasan)
    # Titles follow syzbot: its skip list drops kmalloc*/kasan* frames, so the KUnit
    # cases title as kunit_try_run_case; the symbolized stack names the test function.
    assert "KASAN: slab-out-of-bounds Write in kunit_try_run_case" in titles, titles
    oob = next(r for r in kasan if any(f.startswith("kmalloc_oob_right+") for f in r.stack))
    assert any(f.startswith("kmalloc_oob_right+") and "mm/kasan/kasan_test_c.c:" in f
               for f in oob.stack), oob.stack
    text = (selftest_run.directory / oob.file).read_text()
    assert text.startswith(f"TITLE: {oob.title}\n") and "BUG: KASAN: slab-out-of-bounds" in text
    vmalloc = next(w for w in job.workloads if w.workload == "vmalloc")
    assert vmalloc.status == "pass"
    # Patch 2/2 inverts two mutexes at boot: a real lockdep report, not provoked by a
    # workload, so it is unexpected and makes the run fail.
    lockdep = [r for r in job.reports if r.type == "LOCKDEP"]
    # (The function's name avoids "lockdep": syzbot's frame-skip list, which kto follows,
    # skips every frame containing it.)
    assert [r.title for r in lockdep] == ["possible deadlock in kto_abba_selftest"]
    assert any("kto_abba_selftest" in f and "mm/vmalloc.c:" in f for f in lockdep[0].stack)
    assert lockdep[0].workload is None and not lockdep[0].expected
    assert selftest_run.exit_code() == 1


def test_build_failure_is_an_outcome(default_run, runs, tmp_path):
    """A series that breaks the build: a recorded outcome with the compiler's first error
    lines, nothing in the build store, exit status 1, and no boot attempted."""
    cfg = dataclasses.replace(runs["default"], name="build-error", workloads=[],
                              patches=REPO / "patches/selftest/build-error.mbox")
    result = pipeline.run(cfg, tmp_path)
    [job] = result.jobs
    assert job.outcome == "build-failed"
    first = job.error.splitlines()[0]
    assert "mm/vmalloc.c" in first and "error:" in first, job.error
    assert "kto_selftest_undeclared_function" in first
    assert job.boot == {} and job.build["dir"] is None
    assert not build.store_dir(arch.get("x86_64"), job.build["key"]).exists()
    assert (result.directory / "x86_64" / "build.log").exists()
    assert result.exit_code() == 1


def _built(runs) -> tuple:
    r = built_kernel("default", "x86_64")
    return arch.get("x86_64"), r, guest_image("x86_64")


def test_panicking_guest_is_an_outcome(default_run, runs, tmp_path):
    a, r, img = _built(runs)
    spec = vm.VmSpec(a, r.artifact("image"), img.initramfs, cmdline_extra=["rdinit=/nonexistent"])
    with vm.Vm(spec, tmp_path / "console.log") as guest:
        t0 = time.monotonic()
        res = guest.boot(timeout=120, ssh_key=img.ssh_key)
        assert res.outcome == "panic", res
        assert "Kernel panic" in res.detail
        assert time.monotonic() - t0 < 100       # panic=-1 + -no-reboot: QEMU ends at once
        assert not guest.alive()
    assert qemu_processes() == []


def test_hanging_guest_times_out_and_is_killed(default_run, runs, tmp_path):
    a, r, img = _built(runs)
    # init just sleeps (busybox applet via argv after "--"): it never signals readiness.
    spec = vm.VmSpec(a, r.artifact("image"), img.initramfs,
                     cmdline_extra=["rdinit=/bin/busybox", "--", "sleep", "3600"])
    with vm.Vm(spec, tmp_path / "console.log") as guest:
        res = guest.boot(timeout=25, ssh_key=img.ssh_key)
        assert res.outcome == "boot-timeout", res
    assert qemu_processes() == []


def test_ctrl_c_leaves_no_qemu(default_run, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "default",
                             "--results", str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_default)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "booted in" in line or "workload vmalloc" in line:
                break
        assert qemu_processes(), "".join(seen)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + out
    assert "Traceback" not in out
    time.sleep(0.5)
    assert qemu_processes() == []
