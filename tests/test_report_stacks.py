"""Every stack of a report, by name: lockdep chains and held locks, KASAN allocation and
free stacks, KCSAN's two tasks (kto's own console logs and the syzkaller corpus)."""
import lzma
from pathlib import Path

import pytest

from orchestrator.report import parse
from orchestrator.report.stacks import MAIN, stacks

DATA = Path(__file__).parent / "data" / "reports"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / \
    "syzkaller-linux-reports"


def _named(text):
    return {s.name: [f.func for f in s.frames] for s in stacks(text)}


def test_lockdep_chain_entries_lock_sites_and_held_locks():
    reps = parse(lzma.open(DATA / "x86_64-selftest-console.log.xz", "rt").read())
    lockdep = next(r for r in reps if r.title.startswith("possible deadlock"))
    named = _named(lockdep.text)
    assert list(named) == [
        "lock site: swapper/0/1 is trying to acquire lock",
        "lock site: but task is already holding lock",
        "lockdep chain -> #1 (kto_lockdep_b)", "lockdep chain -> #0 (kto_lockdep_a)",
        "locks held by swapper/0/1", MAIN]
    assert named["lockdep chain -> #1 (kto_lockdep_b)"][:2] == ["__mutex_lock",
                                                                 "kto_abba_selftest"]
    assert named["locks held by swapper/0/1"] == ["kto_abba_selftest"]
    # The main stack is the one the parser's title and frames come from.
    assert named[MAIN] == [f.func for f in lockdep.frames][:len(named[MAIN])]


def test_kasan_allocation_stack():
    reps = parse(lzma.open(DATA / "x86_64-selftest-console.log.xz", "rt").read())
    kasan = next(r for r in reps if r.title.startswith("KASAN:"))
    named = _named(kasan.text)
    assert list(named) == [MAIN, "Allocated by task 74"]
    assert "kmalloc_oob_right" in named["Allocated by task 74"]


def _corpus(n):
    p = CORPUS / str(n)
    if not p.exists():
        pytest.skip("the syzkaller corpus is not beside this checkout (../shared)")
    return parse(p.read_text(errors="replace").split("\n\n", 1)[1])[0]


def test_kasan_free_stack_and_kcsan_other_task():
    uaf = _named(_corpus(417).text)
    assert list(uaf) == [MAIN, "Allocated by task 2747", "Freed by task 2943"]
    assert "usbvision_release" in uaf["Freed by task 2943"]
    race = _named(_corpus(449).text)
    assert len(race) == 2 and all(k.startswith("write to ADDR of 2 bytes by task") for k in race)
    assert all(v[0] == "netlink_recvmsg" for v in race.values())


def test_suspects_are_found_in_any_stack_and_ranked_by_it():
    from orchestrator.results import ReportEntry
    from orchestrator.series import load_series
    from orchestrator.seriestest import suspects
    series = load_series(Path(__file__).resolve().parent.parent / "patches" / "examples" /
                         "lockdep-chain.mbox")
    chain = "lockdep chain -> #1 (vm_ram_count_lock)"
    rep = ReportEntry(
        title="possible deadlock in vm_unmap_ram", type="LOCKDEP", frame="vm_unmap_ram",
        corrupted=False, workload="vmalloc", expected=False, file="r.txt", first_line="",
        stack=["__mutex_lock+0x1bb/0x786", "vm_unmap_ram+0x9a/0x2c0 (mm/vmalloc.c:3008)",
               "vm_map_ram_test+0xe1/0x177 [test_vmalloc]"],
        stacks={chain: ["__mutex_lock+0x1bb/0x786", "vm_map_ram+0x1f0/0x2f0",
                        "vm_map_ram_test+0xc4/0x177 [test_vmalloc]"]})
    found = suspects(series, rep)
    # 1/3 changed vm_unmap_ram (main stack); 3/3, the culprit, vm_map_ram (chain #1 only);
    # 2/3 only adds a comment above vm_map_ram_test: no changed line inside a function.
    assert [(s.patch.index, s.functions, s.stacks) for s in found] == [
        (1, ["vm_unmap_ram"], ["main stack"]), (3, ["vm_map_ram"], [chain])]
    assert found[1].describe().endswith(f"touches vm_map_ram (in the {chain})")
    # Without the chain stack (kto before issue 18) the culprit was not a suspect.
    rep.stacks = {}
    assert [s.patch.index for s in suspects(series, rep)] == [1]


def test_real_lockdep_chain_report_of_the_example_series():
    # kto's console of patches/examples/lockdep-chain.mbox (tip, x86_64): the cycle closes
    # in vm_unmap_ram; vm_map_ram, changed by the culprit 3/3, is in "-> #1" only.
    [rep] = parse(lzma.open(DATA / "x86_64-lockdep-chain-console.log.xz", "rt").read())
    assert rep.title == "possible deadlock in vm_unmap_ram"
    named = _named(rep.text)
    assert "vm_map_ram" not in named[MAIN] and "vm_unmap_ram" in named[MAIN]
    assert named["lockdep chain -> #1 (vm_ram_count_lock)"][:2] == ["__mutex_lock",
                                                                     "vm_map_ram"]
    assert named["locks held by vmalloc_test/0/66"] == ["test_func", "vm_unmap_ram"]
