"""Workload result parsers on real guest output captured from kto's own runs
(tests/data/workloads/*.log, committed as captured)."""
from pathlib import Path

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
