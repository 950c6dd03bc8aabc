"""The faulting instruction as a stack of its own: the real WARNING the hugetlb walker
example series provokes on the x86_64 debug-VM kernel (make test-race) fires in
hugetlb_vma_assert_locked(), inlined through hugetlb_walk() and walk_hugetlb_range() into
__walk_page_range(); the call trace starts above it (walk_page_vma), so only the RIP line,
symbolized with its inline chain, leads check-series to the patch that changed
walk_hugetlb_range()."""
from pathlib import Path

from orchestrator import seriestest
from orchestrator.report import parse
from orchestrator.report.stacks import FAULT, MAIN, stacks
from orchestrator.results import ReportEntry
from orchestrator.series import load_series

REPO = Path(__file__).resolve().parent.parent
LOG = REPO / "tests/data/reports/x86_64-hugetlb-walk-unlocked-warning.txt"


def test_rip_line_is_the_faulting_instruction_stack():
    [rep] = parse(LOG.read_text())
    assert rep.title == "WARNING in __walk_page_range"
    got = {s.name: [f.func for f in s.frames] for s in stacks(rep.text)}
    assert got[FAULT] == ["__walk_page_range"]         # the kernel RIP, not the user one
    assert got[MAIN][:2] == ["walk_page_vma", "show_smap"]


def test_arm64_and_riscv64_pc_lines_too():
    for line in ("pc : __walk_page_range+0x3ff/0x532", "epc : __walk_page_range+0x3ff/0x532"):
        text = f"WARNING: CPU: 0 PID: 1 at mm/pagewalk.c:1 x\n{line}\nCall trace:\n f+0x1/0x2\n"
        assert [f.func for s in stacks(text) if s.name == FAULT for f in s.frames] == \
            ["__walk_page_range"]


def test_check_series_suspects_the_patch_that_changed_the_inlined_function():
    series = load_series(REPO / "patches/examples/hugetlb-walk-unlocked.mbox")
    # As kto's symbolizer wrote it for this report on the tip kernel (addr2line -i).
    report = ReportEntry(
        "WARNING in __walk_page_range", "WARNING", "__walk_page_range", False, "mm-race",
        False, "x86_64/reports/001.txt", "",
        stack=["walk_page_vma+0x166/0x18a (mm/pagewalk.c:647)",
               "show_smap+0x81/0x38e (fs/proc/task_mmu.c:1162)"],
        stacks={FAULT: ["hugetlb_walk (include/linux/hugetlb.h:1341) [inline]",
                        "walk_hugetlb_range (mm/pagewalk.c:305) [inline]",
                        "__walk_page_range+0x3ff/0x532 (mm/pagewalk.c:376)"]})
    [s] = seriestest.suspects(series, report)
    assert s.patch.index == 2 and s.functions == ["walk_hugetlb_range"] and s.stacks == [FAULT]
    # Without the faulting instruction no patch touches the stack.
    report.stacks = {}
    assert seriestest.suspects(series, report) == []
