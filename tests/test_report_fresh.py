"""Fresh reports from kto's own kernels: the console logs of the selftest run (KASAN's
KUnit suite + the lockdep AB-BA patch of patches/selftest/) on each arch, captured from
real guests and committed as test data. Titles, types and counts are pinned here;
symbolized frames are pinned by the slow tests that have the matching vmlinux
(test_e2e.py, test_arches.py)."""
import lzma
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.report import parse

DATA = Path(__file__).parent / "data" / "reports"
ARCHES = sorted(p.name.split("-")[0] for p in DATA.glob("*-selftest-console.log.xz"))


def reports(arch):
    text = lzma.open(DATA / f"{arch}-selftest-console.log.xz", "rt", errors="replace").read()
    return parse(text)


def test_all_three_arches_have_a_fresh_log():
    assert ARCHES == ["arm64", "riscv64", "x86_64"]


@pytest.mark.parametrize("arch", ARCHES)
def test_fresh_reports(arch):
    reps = reports(arch)
    titles = Counter(r.title for r in reps)
    # Exactly one lockdep report, from patch 2/2, with the initcall as the guilty frame.
    lockdep = [r for r in reps if r.type == "LOCKDEP"]
    assert [r.title for r in lockdep] == ["possible deadlock in kto_abba_selftest"]
    assert lockdep[0].frame == "kto_abba_selftest"
    # Every other report is KASAN's, one per deliberate bad access, none truncated.
    kasan = [r for r in reps if r.title.startswith("KASAN: ")]
    assert len(kasan) == len(reps) - 1 >= 100
    assert not [r.title for r in reps if r.corrupted]
    for title in ("KASAN: slab-out-of-bounds Write in kunit_try_run_case",
                  "KASAN: slab-use-after-free Read in kunit_try_run_case",
                  "KASAN: double-free in mempool_double_free_helper",
                  "KASAN: use-after-free Read in page_alloc_uaf",
                  "KASAN: vmalloc-out-of-bounds Read in kunit_try_run_case",
                  "KASAN: slab-use-after-free Read in workqueue_uaf"):
        assert titles[title] >= 1, (title, sorted(titles))
    types = {r.type for r in kasan}
    assert {"KASAN-WRITE", "KASAN-READ", "KASAN-USE-AFTER-FREE-READ",
            "KASAN-INVALID-FREE"} <= types, types
    # The raw stack names the KUnit case, even where the title (syzbot's skip list) cannot.
    oob = next(r for r in kasan if any(f.func == "kmalloc_oob_right" for f in r.frames))
    assert oob.title == "KASAN: slab-out-of-bounds Write in kunit_try_run_case"
    assert any(f.module == "kasan_test" for f in oob.frames if f.func == "kmalloc_oob_right")


def test_x86_64_counts_are_pinned():
    titles = Counter(r.title for r in reports("x86_64"))
    assert sum(titles.values()) == 153
    assert titles["KASAN: slab-out-of-bounds Write in kunit_try_run_case"] == 81
    assert titles["KASAN: slab-out-of-bounds Read in kunit_try_run_case"] == 26
    assert titles["KASAN: slab-use-after-free Read in kunit_try_run_case"] == 12
