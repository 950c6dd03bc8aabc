"""The console watcher: which reports are fatal (over the syzkaller corpus and kto's own
console logs), and when it stops a guest (a console fed line by line, as the QEMU pump
does)."""
import lzma
import threading
import time
from pathlib import Path

import pytest

from orchestrator.crashwatch import Watcher, is_fatal
from orchestrator.report import parse

DATA = Path(__file__).parent / "data" / "reports"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / \
    "syzkaller-linux-reports"

FATAL = ("general protection fault", "BUG: unable to handle", "kernel BUG", "BUG: stack guard",
         "kernel panic", "KASAN: null-ptr-deref", "KASAN: wild-memory-access")
SURVIVED = ("WARNING", "possible deadlock", "KCSAN:", "INFO: task hung", "INFO: rcu detected",
            "BUG: soft lockup", "inconsistent lock state", "BUG: sleeping function",
            "BUG: Bad page state", "KMSAN:", "UBSAN:", "memory leak")


def _corpus():
    if not CORPUS.is_dir():
        pytest.skip("the syzkaller corpus is not beside this checkout (../shared)")
    for p in sorted(CORPUS.iterdir()):
        text = p.read_text(errors="replace")
        if "\n\n" in text:
            reps = parse(text.split("\n\n", 1)[1])
            if reps:
                yield reps[0]


def test_fatal_classification_over_the_syzkaller_corpus():
    fatal = survived = 0
    for r in _corpus():
        if r.title.startswith(FATAL):
            assert is_fatal(r), r.title
            fatal += 1
        elif r.title.startswith(SURVIVED) and "[#" not in r.text:
            assert not is_fatal(r), r.title
            survived += 1
    assert fatal > 50 and survived > 100, (fatal, survived)


def test_kto_console_reports_lockdep_and_kasan_survive_an_oops_does_not():
    text = lzma.open(DATA / "x86_64-selftest-console.log.xz", "rt").read()
    reps = parse(text)
    assert any(r.title.startswith("possible deadlock") for r in reps)
    assert any(r.title.startswith("KASAN:") for r in reps)
    assert not any(is_fatal(r) for r in reps)      # KASAN KUnit's deliberate reports
    [oops] = parse((DATA / "riscv64_null_deref.log").read_text())
    assert is_fatal(oops), oops.title


class FakeConsole:
    """The Console interface the watcher uses: text, closed, cond."""

    def __init__(self):
        self.text, self.closed = "", False
        self.cond = threading.Condition()

    def feed(self, lines, delay=0.0):
        for line in lines:
            with self.cond:
                self.text += line + "\n"
                self.cond.notify_all()
            if delay:
                time.sleep(delay)


def _lines():
    text = lzma.open(DATA / "x86_64-selftest-console.log.xz", "rt").read().splitlines()
    return text[:1500]      # boot, the lockdep report, KASAN KUnit reports


def test_watcher_keeps_nonfatal_reports_running_and_stops_at_an_oops():
    con, killed = FakeConsole(), []
    with Watcher(con, lambda: killed.append(len(con.text)), quiet=0.5, poll=0.1) as w:
        con.feed(_lines())
        time.sleep(1.5)
        assert not killed and w.trigger is None       # lockdep, KASAN: keep going
        before = len(con.text)
        oops = (DATA / "riscv64_null_deref.log").read_text().splitlines()
        t0 = time.monotonic()
        con.feed(oops[:8], delay=0.05)                 # the kernel still printing...
        con.feed(oops[8:], delay=0.05)
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(killed) == 1, killed
    # Stopped only after the report was printed whole (grace: the console went quiet).
    assert killed[0] == len(con.text) > before
    assert w.trigger.kind == "crash" and w.trigger.title.startswith("BUG: unable to handle")
    assert time.monotonic() - t0 < 5
    assert "kernel crashed: BUG: unable to handle" in w.trigger.describe()


def test_watcher_stops_at_a_report_matching_the_bisect_predicate():
    con, killed = FakeConsole(), []
    target = "KASAN: slab-out-of-bounds Write in kunit_try_run_case"
    with Watcher(con, lambda: killed.append(1), stop_on=lambda t: t == target, quiet=0.3,
                 poll=0.1) as w:
        con.feed(_lines())
        deadline = time.monotonic() + 10
        while not killed and time.monotonic() < deadline:
            time.sleep(0.05)
    assert killed and w.trigger.kind == "match" and w.trigger.title == target


def test_watcher_ends_with_the_console():
    con, killed = FakeConsole(), []
    w = Watcher(con, lambda: killed.append(1), poll=0.1).start()
    con.feed(_lines()[:50])
    with con.cond:
        con.closed = True
        con.cond.notify_all()
    w._thread.join(5)
    assert not w._thread.is_alive() and not killed


def test_trigger_is_set_before_the_guest_is_killed():
    """The workload runner sees the SSH connection drop the moment QEMU dies: by then the
    watcher must already say why (a crash), or the runner's "hung the guest" wins."""
    con, seen_at_kill = FakeConsole(), []
    w = Watcher(con, lambda: seen_at_kill.append(w.trigger), quiet=0.2, poll=0.1).start()
    con.feed((DATA / "riscv64_null_deref.log").read_text().splitlines())
    deadline = time.monotonic() + 10
    while not seen_at_kill and time.monotonic() < deadline:
        time.sleep(0.05)
    w.close()
    assert seen_at_kill and seen_at_kill[0] is not None and seen_at_kill[0].kind == "crash"
    assert w.trigger.stopped >= w.trigger.seen


def test_close_gives_the_watcher_its_last_look_at_a_console_that_just_died():
    """A guest that panicked and exited before the watcher's quiet period: close() (what
    the pipeline calls when the guest is gone) still yields the crash trigger."""
    con = FakeConsole()
    w = Watcher(con, lambda: None, quiet=30, grace=60, poll=0.1).start()
    con.feed((DATA / "riscv64_null_deref.log").read_text().splitlines())
    time.sleep(0.5)
    assert w.trigger is None                     # still waiting for the console to go quiet
    w.close()
    assert w.trigger is not None and w.trigger.kind == "crash"
