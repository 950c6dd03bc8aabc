"""Parser unit tests on real console snippets (syzkaller corpus + tests/data/reports)."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from orchestrator.report import Frame, Report, dedup, format_report, parse
from orchestrator.report import conformance as C
from orchestrator.report import formats as F

DATA = Path(__file__).parent / "data" / "reports"
needs_corpus = pytest.mark.skipif(not C.DEFAULT_CORPUS.is_dir(), reason="corpus not available")


def case(name: str) -> C.Case:
    return C.load_case(C.DEFAULT_CORPUS / name)


def test_format_table_is_consistent():
    # Every template placeholder must have a title group or the appended frame.
    for oops in F.OOPSES:
        for f in oops.formats:
            n = f.title.groups + (1 if f.stack else 0)
            idx = [int(x[1]) for x in string.Formatter().parse(f.fmt) if x[1]]
            assert not idx or max(idx) < n, (oops.header, f.fmt)


# One real log per format family; expected titles come from the corpus headers.
PINNED = {
    "216": "KASAN invalid-free", "371": "KASAN null-ptr-deref", "195": "KASAN wild-memory-access",
    "199": "KASAN stack-out-of-bounds", "737": "KASAN slab-use-after-free",
    "16": "KASAN use-after-free (old format, truncated)", "593": "KFENCE use-after-free",
    "191": "lockdep circular", "234": "lockdep recursive", "553": "lockdep inconsistent",
    "559": "lockdep irq-safe -> irq-unsafe", "527": "suspicious RCU usage",
    "116": "bad unlock balance", "397": "held lock freed", "608": "sleeping in atomic",
    "75": "scheduling while atomic", "580": "kernel BUG at", "89": "Bad page state",
    "345": "WARNING (old, panic_on_warn)", "695": "WARNING arm64", "392": "general protection fault",
    "734": "arm64 paging request", "112": "x86 NULL pointer dereference", "67": "soft lockup",
    "436": "hung task", "273": "RCU stall", "237": "RCU stall arm32", "520": "UBSAN array bounds",
    "41": "UBSAN undefined", "126": "kmemleak", "337": "Kernel panic", "524": "arm64 Internal error",
    "546": "lockdep invalid wait context", "157": "refcount WARNING", "744": "WARNING new format",
}


@needs_corpus
@pytest.mark.parametrize("name", sorted(PINNED, key=int))
def test_pinned_corpus_format(name):
    c = case(name)
    reps = parse(c.log)
    assert reps, PINNED[name]
    r = reps[0]
    assert r.title in c.titles, (PINNED[name], r.title)
    assert r.type == (c.type or "UNKNOWN")
    assert r.corrupted == c.corrupted


@needs_corpus
def test_no_crash_logs_have_no_reports():
    for name in ("1", "3", "83", "144", "262", "647", "649", "731", "739"):
        assert parse(case(name).log) == [], name


@needs_corpus
def test_multiple_reports_in_order():
    names = ["737", "345", "191"]
    cases = [case(n) for n in names]
    log = "\n".join(c.log for c in cases)
    reps = parse(log)
    titles = [r.title for r in reps]
    pos = 0
    for c in cases:  # each expected title appears, in order (extra follow-up reports allowed)
        while pos < len(titles) and titles[pos] not in c.titles:
            pos += 1
        assert pos < len(titles), (c.titles[0], titles)
        pos += 1
    starts = [r.start_line for r in reps]
    assert starts == sorted(starts)
    assert all(r.start_line <= r.end_line for r in reps)


@needs_corpus
def test_printk_caller_separation():
    # Interleave two real reports printed by different callers (T1194 and C0) line by line.
    a, b = case("345"), case("553")
    la = [ln for ln in a.log.split("\n") if ln.strip()]
    lb = [ln for ln in b.log.split("\n") if ln.strip()]
    assert "[ T1194]" in la[0] and "[    C0]" in lb[1]
    mixed = []
    for i in range(max(len(la), len(lb))):
        mixed += la[i:i + 1] + lb[i:i + 1]
    reps = parse("\n".join(mixed))
    by_caller = {r.caller: r for r in reps}
    assert by_caller["T1194"].title in a.titles
    assert by_caller["C0"].title in b.titles
    assert not by_caller["T1194"].corrupted and not by_caller["C0"].corrupted
    # Each report's text only carries its own caller's lines.
    assert all("[    C0]" not in ln for ln in by_caller["T1194"].text.split("\n"))
    assert by_caller["T1194"].frame == "xfrm_state_fini"


def test_benign_vmalloc_failure_is_not_a_report():
    assert parse((DATA / "test_vmalloc_benign.log").read_text()) == []


@needs_corpus
def test_benign_block_does_not_hide_real_report():
    log = (DATA / "test_vmalloc_benign.log").read_text() + "\n" + case("737").log
    reps = parse(log)
    assert len(reps) >= 1 and reps[0].title in case("737").titles


def test_kasan_init_line_is_not_a_report():
    log = "[    0.000000] kasan: KernelAddressSanitizer initialized\n[    0.1] KASAN: KernelAddressSanitizer initialized\n"
    assert parse(log) == []


def test_riscv64_trace():
    reps = parse((DATA / "riscv64_null_deref.log").read_text())
    assert len(reps) == 1  # "Oops [#1]" and the panic are part of the same report
    r = reps[0]
    assert r.title == "BUG: unable to handle kernel NULL pointer dereference in folio_mapping"
    assert r.type == "NULL-POINTER-DEREFERENCE" and not r.corrupted
    assert r.frames[0] == Frame("folio_mapping", 0x1c, 0x6a, None, 0xffffffff801e0a9c)
    assert [f.func for f in r.frames][-2:] == ["do_trap_ecall_u", "ret_from_exception"]


@needs_corpus
def test_arm64_call_trace_frames():
    r = parse(case("524").log)[0]
    assert [f.func for f in r.frames][:3] == ["__raw_readb", "logic_inb", "ns558_init"]
    assert r.frames[0].offset == 0x18 and r.frames[0].size == 0x2c


@needs_corpus
def test_kasan_frames_and_header_fields():
    r = parse(case("740").log)[0]
    assert r.title == "KASAN: slab-use-after-free Read in chrdev_open"
    assert r.frame == "chrdev_open"
    assert r.frames[0].func == "dump_stack_lvl"
    assert any(f.func == "chrdev_open" for f in r.frames)
    assert r.caller is None and r.start_line == 1


def test_dedup_counts_across_runs():
    mk = lambda t: Report(title=t, type="WARNING", frame=None)  # noqa: E731
    run1 = [mk("WARNING in a"), mk("WARNING in b"), mk("WARNING in a")]
    run2 = [mk("WARNING in c"), mk("WARNING in a")]
    out = dedup(run1 + run2)
    assert [(t, n) for t, n, _ in out] == [("WARNING in a", 3), ("WARNING in b", 1), ("WARNING in c", 1)]
    assert out[0][2] is run1[0]


@needs_corpus
def test_dedup_of_real_log_repeated():
    log = case("345").log + "\n" + case("345").log + "\n" + case("737").log
    out = dedup(parse(log))
    counts = {t: n for t, n, _ in out}
    assert counts["WARNING in xfrm_state_fini"] == 2


def test_format_report_mentions_everything():
    r = Report(title="WARNING in foo", type="WARNING", frame="foo", corrupted=False,
               frames=[Frame("foo", 0x10, 0x40, source="mm/foo.c:12"), Frame("bar", inline=True)])
    s = format_report(r)
    for needle in ("WARNING in foo", "TYPE: WARNING", "FRAME: foo", "CORRUPTED: no",
                   "  foo+0x10/0x40 (mm/foo.c:12)\n", "  bar [inline]"):
        assert needle in s


def test_garbage_input_does_not_crash():
    for log in ("", "\n\n", "BUG:", "WARNING:", "\x00\xff BUG: KASAN:", "Call Trace:\n foo+0x1/0x2",
                "[ T1] INFO: task x blocked for more than 1 seconds."):
        reps = parse(log)
        assert isinstance(reps, list)
    assert isinstance(parse(b"BUG: soft lockup - CPU#0 stuck for 22s!"), list)


def test_titles_are_normalized():
    log = ("[   10.0] BUG: KASAN: slab-out-of-bounds in foo_bar+0x1a/0x40 at addr ffff8801c464b568\n"
           "[   10.1] Read of size 4 by task syz-executor3/1234\n")
    r = parse(log)[0]
    assert not re.search(r"0x|ffff88|\+0x", r.title), r.title


def test_line_matchers_agree_with_searching_each_pattern():
    lines = (DATA / "riscv64_null_deref.log").read_text().splitlines() + [
        "Call Trace:", "  Call trace:", "x Call Trace:", "Allocated by task 12:", "Memory state around",
        " Memory state around", "  -> #1 (&mm->mmap_lock){++++}:", "Backtrace:", " Backtrace:",
        " should_failslab+0x5/0x10", " [<ffff0000>] __should_fail.part.0+0x1/0x2", "x should_fail+0x1",
        "NMI backtrace for cpu 1", "", " ", "stack backtrace:",
    ]
    for ln in lines:
        assert bool(F.is_stack_start(ln)) == bool(F.STACK_START_ANY.search(ln)), ln
        assert bool(F.is_corrupted(ln)) == bool(F.CORRUPTED_ANY.search(ln)), ln
        for fr, m in zip(F.FRAME_RES, F.FRAME_MATCHERS):
            a, b = fr.search(ln), m(ln)
            assert (a and a.groups()) == (b and b.groups()), ln


def test_benign_vmalloc_block_on_real_timestamped_console():
    """The benign table must fire on a real console (printk time + caller prefixes):
    the test_vmalloc allocation-failure line and its trace are benign lines."""
    from pathlib import Path
    from orchestrator.report.parser import _benign_lines
    log = (Path(__file__).parent / "data" / "workloads" /
           "vmalloc-fast-x86_64-console.log").read_text()
    lines = log.split("\n")
    benign = _benign_lines(lines, log)
    start = next(i for i, l in enumerate(lines) if "vmalloc error: size" in l)
    assert start in benign
    assert any("Call Trace:" in lines[i] for i in benign), "trace lines not covered"
    assert parse(log) == []


def test_header_glued_after_other_output_starts_a_report():
    # Console output without a newline before the header (issue 12, point 6); ODEBUG:/DEBUG:
    # are other words, not "BUG:".
    log = ("executing program 1BUG: KASAN: use-after-free in foo+0x1/0x2\n"
           "Read of size 8 at addr ffff888012345678 by task x/1\nCall Trace:\n foo+0x1/0x2\n")
    assert [r.title for r in parse(log)] == ["KASAN: use-after-free Read in foo"]
    assert parse("[    1.0] ODEBUG: free active (active state 0) object type: timer_list\n") == []
    assert parse("[    1.0] PM: DEBUG: suspend entry\n") == []


def test_replayed_header_is_not_a_new_report():
    one = ("[    1.0] WARNING: CPU: 0 PID: 1 at mm/foo.c:12 bar+0x1/0x2\nCall Trace:\n bar+0x1/0x2\n"
           "---[ end trace 0000000000000000 ]---\n")
    log = one + "** replaying previous printk message **\n" + one
    assert [r.title for r in parse(log)] == ["WARNING in bar"]


def test_powerpc_unreliable_frame_is_not_blamed():
    log = ("[  1.0] INFO: task syz:1 blocked for more than 143 seconds.\n[  1.0] Call Trace:\n"
           "[  1.0] [c000000001bb3530] [c000000001bb35a0] __rela_dyn_start+0x308828/0x345288 (unreliable)\n"
           "[  1.0] [c000000001bb3710] [c0000000000286fc] __switch_to+0x43c/0x6d0\n"
           "[  1.0] [c000000001bb3a10] [c0000000005f8868] exit_aio+0x188/0x2a0\n")
    assert [r.title for r in parse(log)] == ["INFO: task hung in exit_aio"]


def test_stall_without_entry_point_is_corrupted():
    log = ("[  1.0] INFO: rcu_sched self-detected stall on CPU\n[  1.0] Call Trace:\n"
           "[  1.0]  <IRQ>\n[  1.0]  apic_timer_interrupt+0x1/0x2\n[  1.0]  </IRQ>\n"
           "[  1.0]  foo+0x1/0x2\n[  1.0]  bar+0x1/0x2\n")
    r = parse(log)[0]
    assert r.title == "INFO: rcu detected stall in corrupted" and r.corrupted
    log2 = log + "[  1.0]  __x64_sys_baz+0x1/0x2\n[  1.0]  do_syscall_64+0x1/0x2\n"
    assert parse(log2)[0].title == "INFO: rcu detected stall in sys_baz"


def test_kmemleak_object_stays_with_its_memory_leak_line():
    log = ("[ 1.0] BUG: memory leak\n[ 1.0] unreferenced object 0xffff888109b7e700 (size 32):\n"
           "[ 1.0]   comm \"syz\", pid 1, jiffies 4294944432 (age 13.120s)\n[ 1.0]   backtrace:\n"
           "[ 1.0]     [<ffffffff81234567>] kmalloc_trace+0x1/0x2\n"
           "[ 1.0]     [<ffffffff81234567>] kasprintf+0x1/0x2\n"
           "[ 1.0]     [<ffffffff81234567>] foo_create+0x1/0x2\n")
    reps = parse(log)
    assert [(r.title, r.start_line) for r in reps] == [("memory leak in foo_create", 0)]


def test_newer_warning_forms_and_zero_size_vmalloc():
    tail = ("[ 1.0] RIP: 0010:{rip}+0x11c/0x1200\n[ 1.0] Call Trace:\n[ 1.0]  <TASK>\n"
            "[ 1.0]  {caller}+0xad/0xf0\n[ 1.0]  do_syscall_64+0xcd/0x250\n")
    cases = [
        ("WARNING: lib/refcount.c:25 at 0x0, CPU#1: syz.0.1/100", "refcount_warn_saturate", "bar_put",
         "WARNING: refcount bug in bar_put"),
        ("WARNING: net/core/dev.c:25 at dev_close_many+0x11c/0x1200, CPU#1: syz/1", "dev_close_many", "x",
         "WARNING in dev_close_many"),
        ("WARNING: CPU: 1 PID: 1 at mm/vmalloc.c:3243 __vmalloc_node_range_noprof+0x11c/0x1200",
         "__vmalloc_node_range_noprof", "foo_ioctl", "WARNING: zero-size vmalloc in foo_ioctl"),
    ]
    for head, rip, caller, title in cases:
        assert [r.title for r in parse(f"[ 1.0] {head}\n" + tail.format(rip=rip, caller=caller))] == [title]
    assert parse("[ 1.0] WARNING: workqueue cpumask: online intersect > possible intersect\n") == []
