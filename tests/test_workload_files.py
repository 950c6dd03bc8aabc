"""Workload files: the shipped ones load; bad ones name file, line and problem."""
import pytest

from orchestrator import workload
from orchestrator.errors import ConfigError


def test_shipped_workloads_load():
    names = workload.available()
    assert {"vmalloc", "kasan-kunit"} <= set(names)
    for n in names:
        wl = workload.load(n)
        assert wl.preset in wl.presets


def test_bad_workload_file(tmp_path):
    (tmp_path / "w.yaml").write_text("name: w\nkind: module\nmodule: m\npresets: {a: []}\n"
                                     "preset: b\nresults: vmalloc-summary\n")
    with pytest.raises(ConfigError, match=r"w.yaml:5: preset: 'b' is not one of the presets"):
        workload.load("w", tmp_path)
    (tmp_path / "w.yaml").write_text("name: w\nkind: module\nmodule: m\npresets: {a: []}\n"
                                     "preset: a\nresults: tap\n")
    with pytest.raises(ConfigError, match=r"w.yaml:6: results: unknown value 'tap'"):
        workload.load("w", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown workload 'nope'"):
        workload.load("nope", tmp_path)


# -- kind: selftest --

SELFTEST = """\
name: w
kind: selftest
setup: [{hugepages_mb: 256}]
before_each: [drop_caches, compact_memory]
presets: {all: [], one: [a]}
preset: all
tests:
  - name: a
    argv: [hugepage-mmap]
    timeout: 60
  - name: b
    argv: [uffd-stress, hugetlb, "{half_free_hugetlb_mb}", "32"]
    timeout: 60
    results: tap
    aslr: false
    setup: [exactly_one_free_hugepage, {shmmax: 268435456}]
    uses: [write_to_hugetlbfs]
    requires: {kconfig: [SYSVIPC], arches: [x86_64], reason: no shm}
    subtests:
      - match: "^wp-"
        requires: {kconfig: [PTE_MARKER_UFFD_WP], reason: no uffd-wp}
"""


def _load(tmp_path, text):
    (tmp_path / "w.yaml").write_text(text)
    return workload.load("w", tmp_path)


def test_shipped_selftest_workloads():
    for name in ("hugetlb", "userfaultfd"):
        wl = workload.load(name)
        assert wl.kind == "selftest" and wl.tests
        for t in wl.tests:
            assert "/" not in t.argv[0] and t.timeout > 0
    hugetlb = {t.name: t for t in workload.load("hugetlb").tests}
    assert {"hugepage-mmap", "hugepage-shm", "map_hugetlb", "hugepage-mremap",
            "hugepage-vmemmap", "hugetlb-madvise", "hugetlb_fault_after_madv",
            "hugetlb_madv_vs_map", "hugetlb_dio", "thuge-gen", "charge_reserved_hugetlb",
            "hugetlb_reparenting"} <= set(hugetlb)
    assert ("exactly_one_free_hugepage", None) in hugetlb["hugetlb_madv_vs_map"].setup
    uffd = [t.argv[1] for t in workload.load("userfaultfd").tests if t.argv[0] == "uffd-stress"]
    assert sorted(uffd) == ["anon", "hugetlb", "hugetlb-private", "shmem", "shmem-private"]
    # The programs that map shmem at uffd-common's fixed 1 GiB hint run without ASLR.
    no_aslr = {t.name for t in workload.load("userfaultfd").tests if not t.aslr}
    assert no_aslr == {"uffd-unit-tests", "uffd-stress-shmem", "uffd-stress-shmem-private"}


def test_selftest_file_parses(tmp_path):
    wl = _load(tmp_path, SELFTEST)
    assert wl.setup == [("hugepages_mb", 256)]
    assert wl.before_each == [("drop_caches", None), ("compact_memory", None)]
    a, b = wl.tests
    assert a.results == "exit-code" and a.files() == ["hugepage-mmap"]
    assert a.aslr and not b.aslr
    assert b.setup == [("exactly_one_free_hugepage", None), ("shmmax", 268435456)]
    assert b.files() == ["uffd-stress", "write_to_hugetlbfs"]
    assert b.requires.kconfig == ["SYSVIPC"] and b.requires.arches == ["x86_64"]
    assert b.subtests[0][0] == "^wp-"
    assert [t.name for t in workload.selected_tests(wl, "one")] == ["a"]
    assert [t.name for t in workload.selected_tests(wl, None)] == ["a", "b"]


@pytest.mark.parametrize("old,new,error", [
    ("[drop_caches, compact_memory]", "[drop_caches, reboot]",
     r"w.yaml:4: before_each\[1\]: unknown setup step 'reboot'"),
    ("[drop_caches, compact_memory]", "[nr_hugepages]",
     r"w.yaml:4: before_each\[0\]: setup step 'nr_hugepages' needs a value"),
    ("[drop_caches, compact_memory]", "[{drop_caches: 3}]",
     r"w.yaml:4: before_each\[0\].drop_caches: setup step 'drop_caches' takes no value"),
    ("[{hugepages_mb: 256}]", "[{hugepages_mb: lots}]",
     r"w.yaml:3: setup\[0\].hugepages_mb: expected an integer, got string 'lots'"),
    ("[{hugepages_mb: 256}]", "[{hugepages_mb: 1, drop_caches: 1}]",
     r"w.yaml:3: setup\[0\]: expected a step name or a one-key mapping"),
    ("[{hugepages_mb: 256}]", "['echo 3 > /proc/sys/vm/drop_caches']",
     r"w.yaml:3: setup\[0\]: unknown setup step"),
    ("argv: [hugepage-mmap]", "argv: [../../bin/sh]",
     r"w.yaml:9: tests\[0\].argv\[0\]: '../../bin/sh' must be a plain file name"),
    ('"{half_free_hugetlb_mb}"', '"{home}"',
     r"w.yaml:12: tests\[1\].argv\[2\]: unknown value '\{home\}'"),
    ("arches: [x86_64]", "arches: [mips]", r"w.yaml:18: tests\[1\].requires.arches\[0\]: "
     r"unknown arch 'mips'"),
    ("aslr: false", "aslr: off-please", r"w.yaml:15: tests\[1\].aslr: expected"),
    ("results: tap", "results: junit", r"w.yaml:14: tests\[1\].results: unknown result "
     r"parser 'junit'"),
    ("    timeout: 60\n  - name: b", "  - name: b",
     r"w.yaml:8: tests\[0\]: missing required key 'timeout'"),
    ("name: b\n", "name: a\n", r"w.yaml:11: tests\[1\].name: duplicate test name 'a'"),
    ("one: [a]", "one: [c]", r"w.yaml:5: presets.one: unknown test 'c'"),
    ('"^wp-"', '"^wp-("', r"w.yaml:20: tests\[1\].subtests\[0\].match: invalid regular"),
    ("kind: selftest\n", "kind: selftest\nmodule: x\n", r"w.yaml:3: module: not allowed in "
     r"a selftest workload"),
    ("kind: selftest\n", "kind: script\n", r"w.yaml:2: kind: unknown kind 'script'"),
    ("    uses: [write_to_hugetlbfs]", "    uses: [/etc/passwd]",
     r"w.yaml:17: tests\[1\].uses\[0\]: '/etc/passwd' must be a plain file name"),
])
def test_bad_selftest_file(tmp_path, old, new, error):
    assert old in SELFTEST
    with pytest.raises(ConfigError, match=error) as e:
        _load(tmp_path, SELFTEST.replace(old, new, 1))
    assert "\n" not in str(e.value)


def test_selftest_workload_needs_tests(tmp_path):
    with pytest.raises(ConfigError, match=r"w.yaml:2: kind: a selftest workload needs the "
                                          r"key 'tests'"):
        _load(tmp_path, "name: w\nkind: selftest\n")
    with pytest.raises(ConfigError, match=r"w.yaml:2: kind: a module workload needs the "
                                          r"key 'module'"):
        _load(tmp_path, "name: w\nkind: module\n")


def test_every_setup_step_is_implemented():
    """The vocabulary in workload.py and the guest script agree."""
    from orchestrator.workload import SETUP_STEPS, _setup
    import inspect
    src = inspect.getsource(_setup)
    for step in SETUP_STEPS:
        assert f'"{step}"' in src, step


# -- requirements -> skip with a reason, from the built kernel's config --

X86 = {"HUGETLBFS": "y", "SYSVIPC": "y", "PTE_MARKER_UFFD_WP": "y",
       "HAVE_ARCH_USERFAULTFD_WP": "y", "HAVE_ARCH_USERFAULTFD_MINOR": "y",
       "ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP": "y",
       "PROC_PAGE_MONITOR": "y", "MEMORY_FAILURE": "y"}
RISCV = {**X86, "PTE_MARKER_UFFD_WP": "n", "MEMORY_FAILURE": "n"}
del RISCV["HAVE_ARCH_USERFAULTFD_WP"]
ARM64 = {k: v for k, v in X86.items() if k != "ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP"}


def test_requirement_unmet_reasons():
    r = workload.Requirement(kconfig=["SYSVIPC", "CGROUP_HUGETLB"], reason="needs shm")
    assert r.unmet("x86_64", {"SYSVIPC": "y", "CGROUP_HUGETLB": "y"}) is None
    assert r.unmet("x86_64", {"SYSVIPC": "y", "CGROUP_HUGETLB": "n"}) == \
        "needs shm (kernel lacks CONFIG_CGROUP_HUGETLB)"
    assert r.unmet("x86_64", {}) == \
        "needs shm (kernel lacks CONFIG_SYSVIPC, CONFIG_CGROUP_HUGETLB)"
    assert workload.Requirement(kconfig=["X"]).unmet("x86_64", {"X": "m"}) is None
    a = workload.Requirement(arches=["x86_64", "arm64"], reason="1G pages")
    assert a.unmet("riscv64", {}) == "1G pages (not supported on riscv64)"
    assert a.unmet("arm64", {}) is None
    assert workload.Requirement().unmet("riscv64", {}) is None


def test_vmemmap_test_skips_on_arm64_config():
    t = {t.name: t for t in workload.load("hugetlb").tests}["hugepage-vmemmap"]
    assert t.requires.unmet("x86_64", X86) is None
    why = t.requires.unmet("arm64", ARM64)
    assert "CONFIG_ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP" in why and "vmemmap" in why


def test_uffd_wp_subtests_skip_on_riscv64_config():
    t = workload.load("userfaultfd").tests[0]
    assert t.name == "uffd-unit-tests"

    def results():
        return [workload.TestResult("uffd-unit-tests: zeropage on anon", "pass"),
                workload.TestResult("uffd-unit-tests: wp-fork on anon", "skip",
                                    "feature missing"),
                workload.TestResult("uffd-unit-tests: minor-wp on shmem", "fail", "x"),
                workload.TestResult("uffd-unit-tests: events-wp on anon", "fail", "y")]
    on_x86 = results()
    workload.apply_subtest_requirements(on_x86, t, "x86_64", X86)
    assert [r.status for r in on_x86] == ["pass", "skip", "fail", "fail"]
    on_riscv = results()
    workload.apply_subtest_requirements(on_riscv, t, "riscv64", RISCV)
    assert [r.status for r in on_riscv] == ["pass", "skip", "skip", "skip"]
    assert all("no userfaultfd write-protect" in r.detail and "PTE_MARKER_UFFD_WP" in r.detail
               for r in on_riscv[1:])
    assert "binary reported fail" in on_riscv[2].detail


def test_loaded_workload_is_a_copy_and_follows_the_file(tmp_path):
    """A run reads each workload file many times: the parse is remembered, but a caller's
    change never leaks into the next load, and an edited file is read again."""
    path = tmp_path / "w.yaml"
    path.write_text("name: w\nkind: module\nmodule: m\npresets: {a: [x=1]}\npreset: a\n"
                    "results: vmalloc-summary\n")
    first = workload.load("w", tmp_path)
    first.timeout = 1
    first.presets["a"].append("y=2")
    again = workload.load("w", tmp_path)
    assert again.timeout != 1 and again.presets["a"] == ["x=1"]
    path.write_text(path.read_text().replace("x=1", "x=22"))
    assert workload.load("w", tmp_path).presets["a"] == ["x=22"]


def test_argv_runs_a_program_without_aslr_under_setarch():
    """aslr: false puts busybox's `linux64 -R` (setarch -R) in front of the program; the
    guest side is checked on a real guest in test_dev_e2e and test_selftests."""
    from orchestrator.arch import ARCHES
    ctx = workload.WorkloadContext(ARCHES["x86_64"], "6.12", {})
    test = workload.SelfTest("s", ["uffd-stress", "shmem", "{nproc}"], 60)
    assert workload._argv(test, None, ctx) == ["./uffd-stress", "shmem", "2"]
    test.aslr = False
    assert workload._argv(test, None, ctx) == ["linux64", "-R", "./uffd-stress", "shmem", "2"]
