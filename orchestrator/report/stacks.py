"""Every stack a report carries, by name, beside the main call trace the title comes from:

- lockdep: the dependency chain entries (``-> #1 (lock){...}:`` and their stacks), the
  "trying to acquire" / "already holding" lock sites and the held-locks lists (one
  ``at: func+off/size`` frame per lock);
- KASAN/KFENCE: the allocation and free stacks (``Allocated by task N:``, ``Freed by
  task N:``, ``Last potentially related work creation:``...);
- KCSAN: the two racing accesses (``write to 0x... by task N on cpu M:``);
- hung tasks, NMI backtraces, a second oops: further ``Call Trace:`` sections, named by
  the task or CPU line before them;
- WARNING/BUG/Oops: the ``faulting instruction`` (the first ``RIP:``/``pc :``/``epc :``
  line): symbolized with its inline chain it names the function that really holds the
  failed check (``hugetlb_vma_assert_locked`` inlined through ``walk_hugetlb_range``
  into ``__walk_page_range``), which the call trace starts above.

A stack is a run of frame lines under a header line (the last non-frame line before
them); unreliable ``? func`` frames are not part of it (as in the main trace)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestrator.report.frames import Frame, parse_frame_line
from orchestrator.report.parser import strip_line

MAIN = "main stack"
FAULT = "faulting instruction"
# "RIP: 0010:func+0x1/0x2" (x86), "pc : func+0x1/0x2" (arm64), "epc : func+0x1/0x2" (riscv)
_PC = re.compile(r"^(?:RIP: (?:[0-9a-f]{4}:)?|pc : |epc : )")

_AT = re.compile(r",\s+at:\s+(\S+\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?:\s+\[\S+\])?)")
_HELD = re.compile(r"^\s*#\d+:\s")
_MARKERS = {"<TASK>", "</TASK>", "<IRQ>", "</IRQ>", "<NMI>", "</NMI>", "<EOI>", "<SOFTIRQ>",
            "</SOFTIRQ>"}
_CHAIN = re.compile(r"^-> #(\d+) \((.*?)\)\{")
_HELD_BY = re.compile(r"^\d+ locks? held by (\S+?):?$")
_ADDR = re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b")
_CONTEXT = re.compile(r"^(?:task:\s*(\S+)|INFO: task (\S+) blocked|NMI backtrace for cpu (\d+)|"
                      r"CPU: (\d+) .*?Comm: (\S+))")


@dataclass
class Stack:
    name: str
    frames: list[Frame] = field(default_factory=list)


def _name(header: str, context: str, n_traces: int) -> str:
    h = header.strip().rstrip(":")
    m = _CHAIN.match(header.strip())
    if m:
        return f"lockdep chain -> #{m.group(1)} ({m.group(2)})"
    m = _HELD_BY.match(header.strip())
    if m:
        return f"locks held by {m.group(1)}"
    if h.lower() in ("call trace", "stack backtrace", "backtrace"):
        if n_traces == 0:
            return MAIN
        return f"call trace {n_traces + 1}" + (f" ({context})" if context else "")
    return _ADDR.sub("ADDR", h)


def stacks(text: str) -> list[Stack]:
    """The named stacks of one report's text (console prefixes allowed), in order. The
    first ``Call Trace:`` is named ``main stack``."""
    out: list[Stack] = []
    header, context, n_traces = "", "", 0
    cur: Stack | None = None
    for raw in text.splitlines():
        line, _ = strip_line(raw)
        s = line.strip()
        if not s or s in _MARKERS:
            continue
        at = _AT.search(line)
        if at:
            # A lock site: "ffff... (lock){+.+.}-{3:3}, at: func+0x12/0x40".
            frame = parse_frame_line(at.group(1))
            if _HELD.match(line):       # " #0: ffff... (lock)..., at: f+0x1/0x2"
                name = _name(header, context, n_traces)
            else:                       # under "X is trying to acquire lock:" and the like
                name = f"lock site: {_ADDR.sub('ADDR', header.strip().rstrip(':'))}"
            if frame is not None and frame.func:
                if cur is None or cur.name != name:
                    cur = Stack(name)
                    out.append(cur)
                cur.frames.append(frame)
            continue
        pc = _PC.match(s)
        if pc:
            frame = parse_frame_line(s[pc.end():])
            if frame is not None and frame.func and not any(st.name == FAULT for st in out):
                out.append(Stack(FAULT, [frame]))
            header, cur = s, None
            continue
        frame = parse_frame_line(line)
        if frame is not None and frame.func and not s.startswith(("RIP:", "PC is", "LR is",
                                                                  "epc :", "ra :", "pc :", "lr :")):
            if cur is None:
                cur = Stack(_name(header, context, n_traces))
                if cur.name == MAIN or cur.name.startswith("call trace"):
                    n_traces += 1
                out.append(cur)
            cur.frames.append(frame)
            continue
        if s.startswith("? ") and parse_frame_line(line) is None and "+0x" in s:
            continue        # an unreliable frame: inside the stack, not a header
        m = _CONTEXT.match(s)
        if m:
            context = next(g for g in m.groups() if g)
            if m.group(4):
                context = f"{m.group(5)} on cpu {m.group(4)}"
        header, cur = s, None
    seen: dict[str, int] = {}
    for st in out:      # names are keys (ReportEntry.stacks): make repeats distinct
        seen[st.name] = seen.get(st.name, 0) + 1
        if seen[st.name] > 1:
            st.name += f" #{seen[st.name]}"
    return out
