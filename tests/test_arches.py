"""One real boot per arch: the matrix run's kernel for arm64 and riscv64 is cross-built,
booted under QEMU (virt machines; OpenSBI for riscv64), reached over SSH, and runs the
workloads. x86_64 is covered by test_e2e.py."""
import pytest

from orchestrator import arch, config, pipeline
from tests.kernels import REPO

pytestmark = pytest.mark.arches


@pytest.mark.parametrize("name", ["arm64", "riscv64"])
def test_arch_boots_and_runs_workloads(name, tmp_path):
    cfg = config.load(REPO / "runs.yaml")["matrix-quick"]
    result = pipeline.run(cfg, tmp_path, arches=[name])
    [job] = result.jobs
    assert job.outcome == "ok", job.error
    assert job.boot["outcome"] == "ready"
    console = (result.directory / job.console_log).read_text(errors="replace")
    assert f"kto: init {job.kernel_release} {arch.get(name).uname}" in console
    assert {w.workload for w in job.workloads} == {"vmalloc", "hugetlb", "userfaultfd"}
    for w in job.workloads:
        assert w.status in ("pass", "skip"), (w.workload, w.status, w.reason, w.tests)
        for t in w.tests:
            assert t.status in ("pass", "xfail") or (t.status == "skip" and t.detail), t
    assert job.unexpected_reports() == [], [r.title for r in job.reports]


@pytest.mark.parametrize("name", ["arm64", "riscv64"])
def test_arch_reports_are_found_titled_and_symbolized(name, tmp_path):
    """Fresh real reports on each arch: the selftest series' lockdep AB-BA inversion and
    KASAN's KUnit suite, titled like syzbot and symbolized with the arch's binutils."""
    cfg = config.load(REPO / "runs.yaml")["selftest"]
    result = pipeline.run(cfg, tmp_path, arches=[name])
    [job] = result.jobs
    assert job.outcome == "ok", job.error
    lockdep = [r for r in job.reports if r.type == "LOCKDEP"]
    assert [r.title for r in lockdep] == ["possible deadlock in kto_abba_selftest"]
    assert any(f.startswith("kto_abba_selftest+") and "mm/vmalloc.c:" in f
               for f in lockdep[0].stack), lockdep[0].stack
    kasan = [r for r in job.reports if r.title.startswith("KASAN: ")]
    assert len(kasan) >= 20 and all(r.expected for r in kasan)
    assert sum(r.count for r in kasan) >= 100        # one entry per title, with its count
    titles = {r.title for r in kasan}
    assert "KASAN: slab-out-of-bounds Write in kunit_try_run_case" in titles, titles
    assert any("use-after-free" in t for t in titles), titles
    assert any(f.startswith("kmalloc_oob_right+") and "mm/kasan/kasan_test_c.c:" in f
               for r in kasan for f in r.stack)
