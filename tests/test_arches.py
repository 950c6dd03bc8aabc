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
