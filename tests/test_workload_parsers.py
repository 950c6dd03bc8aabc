"""Workload result parsers on real guest output captured from kto's own runs
(tests/data/workloads/*.log, committed as captured)."""
from pathlib import Path

import pytest

from orchestrator import workload

DATA = Path(__file__).parent / "data" / "workloads"


def test_vmalloc_summary_on_real_console():
    text = workload.strip_printk_prefix((DATA / "vmalloc-fast-x86_64-console.log").read_text())
    tests = workload.parse_vmalloc_summary(text, ["align_shift_alloc_test"])
    status = {t.name: t.status for t in tests}
    assert len(tests) == 11
    assert status.pop("align_shift_alloc_test") == "xfail"
    assert set(status.values()) == {"pass"}


def test_vmalloc_expected_failure_that_passes_is_a_failure():
    text = "Summary: align_shift_alloc_test passed: 1 failed: 0 repeat: 1 loops: 1000 avg: 1 usec\n"
    [t] = workload.parse_vmalloc_summary(text, ["align_shift_alloc_test"])
    assert t.status == "fail" and "expected to fail, but passed" in t.detail
    [t] = workload.parse_vmalloc_summary(text.replace("align_shift", "fix_size")
                                         .replace("passed: 1 failed: 0", "passed: 0 failed: 1"),
                                         [])
    assert t.status == "fail"


def test_strip_printk_prefix_handles_caller_ids():
    line = "[   40.793234][   T66] Summary: x passed: 1 failed: 0\n"
    assert workload.strip_printk_prefix(line) == "Summary: x passed: 1 failed: 0\n"
    assert workload.strip_printk_prefix("[    1.0] ok 1 a\n") == "ok 1 a\n"


def test_kunit_tap_statuses():
    text = ("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: kasan\n    1..4\n"
            "    ok 1 kmalloc_oob_right\n    not ok 2 kmalloc_oob_left\n"
            "    ok 3 rust_uaf # SKIP Test requires CONFIG_RUST\n"
            "    not ok 4 known_bad\n# kasan: pass:1 fail:2 skip:1 total:4\nnot ok 1 kasan\n")
    tests = workload.parse_kunit_tap(text, ["known_bad"])
    assert [(t.name, t.status) for t in tests] == [
        ("kmalloc_oob_right", "pass"), ("kmalloc_oob_left", "fail"), ("rust_uaf", "skip"),
        ("known_bad", "xfail")]


# -- selftest parsers (guest output captured from kto's own runs on x86_64 under TCG) --

def test_kselftest_exit_codes():
    cases = {0: "pass", 1: "fail", 2: "xfail", 3: "fail", 4: "skip", 139: "fail", 7: "fail"}
    for code, status in cases.items():
        [t] = workload.parse_exit_code("t", "line one\nreason here\n", code)
        assert t.status == status, (code, t)
    [t] = workload.parse_exit_code("t", "# SKIP needs root\n", 4)
    assert t.detail == "# SKIP needs root"
    [t] = workload.parse_exit_code("t", "", 139)
    assert "killed by signal 11" in t.detail
    [t] = workload.parse_exit_code("t", "", 3)
    assert "XPASS" in t.detail
    [t] = workload.parse_exit_code("t", "kto-selftest: timed out after 5s: killed ./t\n", 124)
    assert t.status == "timeout"
    [t] = workload.parse_exit_code("t", "", None)
    assert t.status == "timeout"


def test_tap_directives_and_exit_status():
    text = ("TAP version 13\n1..5\nok 1 test_mmap mmap\nnot ok 2 test_shmget: mmap\n"
            "ok 3 # SKIP shmget requires root privileges\nok 4 racy # XFAIL known race\n"
            "ok 5 test_mmap mmap\n# Totals: pass:2 fail:1 xfail:1 xpass:0 skip:1 error:0\n")
    tests = workload.parse_tap("thuge-gen", text, 1)
    assert [(t.name, t.status) for t in tests] == [
        ("thuge-gen: test_mmap mmap", "pass"), ("thuge-gen: test_shmget: mmap", "fail"),
        ("thuge-gen: shmget requires root privileges", "skip"),
        ("thuge-gen: racy", "xfail"), ("thuge-gen: test_mmap mmap #5", "pass")]
    # A crash after all-ok TAP lines still fails the test.
    tests = workload.parse_tap("x", "ok 1 a\n", 139)
    assert [t.status for t in tests] == ["pass", "fail"]
    # No TAP at all: the exit status decides.
    assert [t.status for t in workload.parse_tap("x", "hello\n", 4)] == ["skip"]


def test_uffd_summary_synthetic():
    text = ("Testing UFFDIO_API (with syscall)... done\n"
            "Testing register-ioctls on anon... done\n"
            "Testing wp-fork on anon... skipped [reason: feature missing]\n"
            "Testing move on shmem... failed [reason: move failed]\n"
            "Userfaults unit tests: pass=2, skip=1, fail=1 (total=4)\n")
    tests = workload.parse_uffd_summary("uffd-unit-tests", text, 1)
    assert [(t.name.split(": ", 1)[1], t.status) for t in tests] == [
        ("UFFDIO_API (with syscall)", "pass"), ("register-ioctls on anon", "pass"),
        ("wp-fork on anon", "skip"), ("move on shmem", "fail")]
    by = {t.name: t for t in tests}
    assert by["uffd-unit-tests: wp-fork on anon"].detail == "feature missing"
    assert by["uffd-unit-tests: move on shmem"].detail == "move failed"
    # Killed mid-test: the test that was running is the timeout, no summary line.
    cut = text.split("Testing move")[0] + "Testing move on shmem... " \
        "kto-selftest: timed out after 600s: killed ./uffd-unit-tests\n"
    tests = workload.parse_uffd_summary("uffd-unit-tests", cut, 124)
    assert tests[-1].name == "uffd-unit-tests: move on shmem"
    assert tests[-1].status == "timeout"


def _real(name):
    return workload.split_log((DATA / name).read_text())


def test_uffd_unit_tests_killed_mid_run_real():
    """A real run on a busy host whose 600 s budget ran out in 'poison on shmem' (the whole
    suite takes 214 s on an idle one: userfaultfd-x86_64.txt): everything before it
    parsed, the running test is the timeout, no invented summary."""
    [(name, output, code)] = _real("userfaultfd-x86_64-poison-hang.txt")
    tests = workload.parse_uffd_summary(name, output, code)
    assert code is None and "Userfaults unit tests:" not in output
    assert [t.status for t in tests[:-1]] == ["pass"] * 62
    assert tests[0].name == "uffd-unit-tests: UFFDIO_API (with syscall)"
    assert tests[-1].name == "uffd-unit-tests: poison on shmem"
    assert tests[-1].status == "timeout"


@pytest.mark.parametrize("arch, not_run", [
    ("x86_64", []),
    # arm64 in 6.12 has no hugetlb vmemmap optimisation: skipped from its config, not run
    ("arm64", ["hugepage-vmemmap"]),
    ("riscv64", [])])
def test_hugetlb_workload_output_real(arch, not_run):
    """A full hugetlb workload run (TCG + KASAN): every test's exit status and TAP read
    back from the saved output."""
    wl = {t.name: t for t in workload.load("hugetlb").tests}
    runs = _real(f"hugetlb-{arch}.txt")
    assert [n for n, _, _ in runs] == [n for n in wl if n not in not_run]
    results = []
    for name, output, code in runs:
        results += workload.SELFTEST_PARSER_FUNCS[wl[name].results](name, output, code)
    assert {r.status for r in results} == {"pass"}, [(r.name, r.status) for r in results]
    thuge = [r.name for r in results if r.name.startswith("thuge-gen: ")]
    assert len(thuge) == 5 and "thuge-gen: test_shmget: mmap #4" in thuge
    # The same output with a failing exit status is a failure with its last lines.
    name, output, _ = runs[0]
    [t] = workload.parse_exit_code(name, output, 1)
    assert t.status == "fail" and "Read same data" in t.detail


@pytest.mark.parametrize("arch, n_skip", [("x86_64", 0), ("arm64", 0), ("riscv64", 38)])
def test_userfaultfd_workload_output_real(arch, n_skip):
    """The full userfaultfd workload (uffd-unit-tests, uffd-stress in five modes) on the
    stock kernel, read back with the config of the kernel it ran on: every test passes
    or, on riscv64 (no write-protect in 6.12), is a skip whose reason comes from that
    config, not the binary's bare "feature missing"."""
    from orchestrator import kconfig
    wl = {t.name: t for t in workload.load("userfaultfd").tests}
    config = kconfig.read_config((DATA / f"kernel-{arch}.config").read_text())
    runs = _real(f"userfaultfd-{arch}.txt")
    assert [n for n, _, _ in runs] == list(wl)
    results = []
    for name, output, code in runs:
        assert code == 0, name
        tests = workload.SELFTEST_PARSER_FUNCS[wl[name].results](name, output, code)
        workload.apply_subtest_requirements(tests, wl[name], arch, config)
        results += tests
    unit = [r for r in results if r.name.startswith("uffd-unit-tests: ")]
    assert len(unit) == 66      # "Userfaults unit tests: ... (total=66)"
    assert "uffd-unit-tests: poison on shmem" in {r.name for r in unit}
    skips = [r for r in results if r.status == "skip"]
    assert len(skips) == n_skip
    assert all("CONFIG_HAVE_ARCH_USERFAULTFD_WP" in r.detail for r in skips), \
        {r.detail for r in skips}
    assert {r.status for r in results} <= {"pass", "skip"}
    assert len(results) - n_skip == len([r for r in results if r.status == "pass"])
