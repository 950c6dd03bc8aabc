"""Watch a guest's console for kernel reports while its workloads run, and end the
guest early when the run can prove nothing more:

- a **fatal** report (an oops, a BUG that killed a task, a general protection fault, a
  kernel panic): the kernel cannot be trusted to finish the workload. Without this, a
  module whose kthread oopsed never returns from insmod and the guest idles until the
  workload timeout (900 s);
- in bisect mode, a report whose title satisfies the bisect predicate (``stop_on``): the
  step is a hit, the rest of the workload adds nothing.

Non-fatal reports (lockdep, WARNING, KCSAN, a KASAN report the kernel survives) keep the
run going. Once a candidate report shows, the kernel gets a grace period to finish
printing (until the console has been quiet for ``quiet`` seconds, at most ``grace``
seconds), then the console is parsed again and QEMU is killed if a report still
qualifies. Everything printed up to then stays in the console log and is collected as
usual.

Report starts and titles come from the report parser (orchestrator/report): the same
titles the results and the bisect predicate use."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

from orchestrator.report import parse
from orchestrator.report.parser import Report, strip_line

# Titles of reports after which the kernel has killed a task in kernel mode (or is
# about to die): the syzkaller-style titles of x86_64, arm64 and riscv64 oopses.
_FATAL_TITLE = re.compile(
    r"^(?:BUG: unable to handle|BUG: kernel NULL pointer dereference|general protection "
    r"fault|kernel BUG|Kernel BUG|kernel panic|Kernel panic|BUG: stack guard page|"
    r"kernel stack overflow|Unable to handle kernel|Internal error|invalid opcode|"
    r"KASAN: null-ptr-deref|KASAN: wild-memory-access|KASAN: maybe wild-memory-access|"
    r"stack segment|double fault|PANIC: double fault|divide error|BUG: bad usercopy|"
    r"Oops)")
# die() prints its counter on the oops line ("Oops: 0002 [#1] PREEMPT SMP KASAN",
# "Internal error: Oops: ... [#1]", "Kernel BUG [#1]"): whatever the title, the kernel
# killed the task that was running.
_DIE_LINE = re.compile(r"^(?:Oops|general protection fault|invalid opcode|Internal error|"
                       r"[Kk]ernel BUG|stack segment|double fault|divide error)\b.*\[#\d+\]")


def is_fatal(report: Report) -> bool:
    """Did the kernel kill a task (or panic) in this report? Non-fatal: lockdep,
    WARNING, KCSAN, hung tasks, KASAN reports the kernel survives."""
    if _FATAL_TITLE.match(report.title):
        return True
    return any(_DIE_LINE.match(strip_line(line)[0]) for line in report.text.splitlines())


@dataclass
class Trigger:
    """Why the guest was stopped early."""
    kind: str             # "crash" (a fatal report) | "match" (the bisect predicate)
    title: str            # the report that decided it
    line: int             # its first line in this boot's console text (0-based)
    seen: float           # monotonic time the report first showed
    stopped: float        # monotonic time QEMU was killed

    def describe(self) -> str:
        what = "kernel crashed" if self.kind == "crash" else "report matching the bisect " \
                                                             "predicate"
        return (f"{what}: {self.title}; guest stopped {self.stopped - self.seen:.0f}s "
                "after the report began")


class Watcher:
    """``with Watcher(console, kill, stop_on=...) as w: ...``; ``w.trigger`` tells
    whether (and why) it stopped the guest."""

    def __init__(self, console, kill: Callable[[], None],
                 stop_on: Callable[[str], bool] | None = None, quiet: float = 2.0,
                 grace: float = 15.0, poll: float = 0.5, progress=None):
        self.console, self.kill, self.stop_on = console, kill, stop_on
        self.quiet, self.grace, self.poll = quiet, grace, poll
        self.progress = progress
        self.trigger: Trigger | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name="kto-crashwatch")

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.grace + 5)

    def _qualifies(self, reports: list[Report]) -> tuple[str, Report] | None:
        for r in reports:
            if is_fatal(r):
                return "crash", r
        if self.stop_on is not None:
            for r in reports:
                if self.stop_on(r.title):
                    return "match", r
        return None

    def _text(self) -> tuple[str, bool]:
        with self.console.cond:
            return self.console.text, self.console.closed

    def _watch(self) -> None:
        parsed = -1
        while not self._done.is_set():
            with self.console.cond:
                if len(self.console.text) == parsed and not self.console.closed:
                    self.console.cond.wait(self.poll)
            text, closed = self._text()
            if len(text) != parsed:
                parsed = len(text)
                found = self._qualifies(parse(text))
                if found is not None and self._confirm(found[1]):
                    return
            if closed:
                return       # QEMU is gone (panic=-1, or stopped): nothing more to watch

    def _confirm(self, first: Report) -> bool:
        """Give the kernel time to finish printing, then decide on the whole text."""
        seen = time.monotonic()
        size, quiet_since = -1, seen
        while not self._done.is_set():
            text, closed = self._text()
            now = time.monotonic()
            if len(text) != size:
                size, quiet_since = len(text), now
            if closed or now - quiet_since >= self.quiet or now - seen >= self.grace:
                break
            self._done.wait(0.2)
        found = self._qualifies(parse(self._text()[0]))
        if found is None:
            return False     # a partial title that did not hold up: keep watching
        kind, rep = found
        if self.progress:
            self.progress(f"console: {'fatal report' if kind == 'crash' else 'bisect hit'}: "
                          f"{rep.title}: stopping the guest")
        # The trigger first: the workload runner sees the connection drop as soon as the
        # guest dies, and must find out why rather than call it a hang.
        self.trigger = Trigger(kind, rep.title, rep.start_line, seen, time.monotonic())
        self.kill()
        self.trigger.stopped = time.monotonic()
        return True
