"""mm selftests: built from the kernel tree itself with each arch's compiler (static), and
the hugetlb and userfaultfd workloads run for real on x86_64 through the pipeline."""
import subprocess
from pathlib import Path

import pytest

from orchestrator import arch, config, pipeline, selftests, source, toolchain
from orchestrator.proc import git

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# What the recipe reads from a tree: the selftests, the tools' uapi copies, each arch's
# uapi, and mm/gup_test.h (uffd-unit-tests). Exported from the cached repository, so the
# shared worktrees are not touched.
TREE_PATHS = ["tools/testing/selftests", "tools/include", "tools/arch", "include/uapi",
              "arch/x86/include/uapi", "arch/arm64/include/uapi", "arch/riscv/include/uapi",
              "mm/gup_test.h"]


@pytest.fixture(scope="module")
def mm_tree(tmp_path_factory):
    cfg = config.load(REPO / "runs.yaml")["default"]
    src = source.resolve(cfg.source, lambda m: None)
    dest = tmp_path_factory.mktemp("tree")
    archive = subprocess.run(["git", "--git-dir", str(source.repo()), "archive", src.commit,
                              *TREE_PATHS], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    tree_id = git(source.repo(), "rev-parse", f"{src.commit}^{{tree}}")
    return dest, tree_id


@pytest.mark.parametrize("name", ["arm64", "riscv64", "x86_64"])
def test_selftests_cross_build(mm_tree, name, tmp_path, monkeypatch):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path))      # a real build, not a cache hit
    tree, tree_id = mm_tree
    a = arch.get(name)
    tc = toolchain.for_arch(a)
    out = selftests.build(tree, tree_id, a, tc, lambda m: None)
    manifest = (out / "manifest.json").read_text()
    files = selftests.wanted_files()
    assert '"failed": []' in manifest, manifest
    machine = {"x86_64": "X86-64", "arm64": "AArch64", "riscv64": "RISC-V"}[name]
    for f in files:
        assert (out / f).exists(), f
        if not f.endswith(".sh"):
            head = subprocess.run([tc.tool("readelf"), "-h", "-d", str(out / f)],
                                  capture_output=True, text=True).stdout
            assert machine in head and "NEEDED" not in head, f    # static, right arch
    for f in selftests.support_files():
        assert (out / f).stat().st_mode & 0o111
    # The same inputs are a cache hit.
    assert selftests.build(tree, tree_id, a, tc, lambda m: None) == out


def _mm_run(tmp_path_factory, presets):
    runs = config.load(REPO / "runs.yaml")
    cfg = runs["mm"]
    cfg.workloads = ["hugetlb", "userfaultfd"]
    cfg.presets = presets
    cfg.timeouts.workload = max(cfg.timeouts.workload, 1800)
    return pipeline.run(cfg, tmp_path_factory.mktemp("results"), ["x86_64"])


def _assert_clean(job):
    assert job.outcome == "ok", job.error
    by_name = {w.workload: w for w in job.workloads}
    assert set(by_name) == {"hugetlb", "userfaultfd"}
    for wl in by_name.values():
        bad = [(t.name, t.status, t.detail) for t in wl.tests
               if t.status not in ("pass", "skip") or (t.status == "skip" and not t.detail)]
        assert not bad, (wl.workload, bad)
        assert wl.status == "pass", (wl.workload, wl.reason)
    # The tool's own set-up provokes no kernel report.
    assert job.unexpected_reports() == [], [r.title for r in job.reports]
    return by_name


def test_hugetlb_and_userfaultfd_quick_pass_on_x86_64(tmp_path_factory):
    """The quick presets (minutes): what make test can afford on every run."""
    result = _mm_run(tmp_path_factory, {"hugetlb": "quick", "userfaultfd": "quick"})
    [job] = result.jobs
    by_name = _assert_clean(job)
    assert {t.name for t in by_name["hugetlb"].tests if t.status == "pass"} == \
        {"hugepage-mmap", "map_hugetlb", "hugetlb-madvise"}
    assert {t.name for t in by_name["userfaultfd"].tests if t.status == "pass"} == \
        {"uffd-stress-anon", "uffd-stress-hugetlb", "uffd-stress-shmem"}
    # The shmem stress ran without ASLR (aslr: false in userfaultfd.yaml), the others with.
    log = (result.directory / "x86_64" / "workloads" / "userfaultfd.txt").read_text()
    assert "=== kto: uffd-stress-shmem: linux64 -R ./uffd-stress shmem 20 16 " in log
    assert "=== kto: uffd-stress-anon: ./uffd-stress anon 20 16 " in log


@pytest.mark.full
def test_hugetlb_and_userfaultfd_full_pass_on_x86_64(tmp_path_factory):
    """Every hugetlb and userfaultfd test (~15 min idle under TCG, far longer busy): make test-full."""
    result = _mm_run(tmp_path_factory, {})
    [job] = result.jobs
    by_name = _assert_clean(job)
    hugetlb = {t.name for t in by_name["hugetlb"].tests if t.status == "pass"}
    assert {"hugepage-mmap", "hugepage-shm", "map_hugetlb", "hugetlb-madvise",
            "charge_reserved_hugetlb", "hugetlb_reparenting"} <= hugetlb
    uffd = [t for t in by_name["userfaultfd"].tests if t.name.startswith("uffd-unit-tests: ")]
    assert len(uffd) > 50 and any(t.name.endswith("wp-fork on anon") for t in uffd)
    stress = {t.name for t in by_name["userfaultfd"].tests if t.status == "pass"}
    assert {f"uffd-stress-{m}" for m in ("anon", "hugetlb", "hugetlb-private", "shmem",
                                         "shmem-private")} <= stress
