"""Find kernel reports in a console log and describe them (title, type, guilty frame).

Pipeline: one scan of the whole log for oops header substrings finds candidate header lines
(cheap, so large clean logs parse fast); each candidate is checked against the oops table,
suppressions and the benign table; reports are delimited per printk caller context; then the
earliest matching format of the report's oops gives the title and the stack extractor the
frame.  Only the lines of report ranges are split into prefix / caller id / text, in one
regex pass per contiguous range, and a report's lines and end marker are found from those
arrays without per-line Python work.  Identical reports (after prefix stripping) share one
description, including their (immutable) Frame objects.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from itertools import compress, repeat
from operator import eq
from collections import OrderedDict
from dataclasses import dataclass, field

from orchestrator.report import formats as F
from orchestrator.report.frames import Frame, extract_frame, parse_frame_line


@dataclass(slots=True)
class Report:
    title: str
    type: str
    frame: str | None
    frames: list[Frame] = field(default_factory=list)
    text: str = ""
    corrupted: bool = False
    start_line: int = 0
    end_line: int = 0
    caller: str | None = None
    corrupted_reason: str | None = None


# "[  12.345678][ T1234] ", "[ T1234] ", "<6>[   1.2] ", also junk glued in front of the
# timestamp ("syzkaller login: [ 1.2] ...", "** 5 printk messages dropped ** [ 1.2] ...").
_TS_RE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
_PREFIX_RE = re.compile(
    r"^(?:<[0-9]+>)?(?:\[ *[0-9]+\.[0-9]+\])?(?:\[ *([TC][0-9]+)\])?(?: |$)?"
)

_MAX_REPORT_LINES = 1000
# With caller ids, text past the next report of the same context still feeds the title.
_MAX_EXTRA_LINES = 300
_END_RES = re.compile(
    r"^(?:---\[ end trace|---\[ end Kernel panic|Kernel Offset:|Rebooting in [0-9]+ seconds)"
)
_KASAN_BAR = re.compile(r"^={40,}\s*$")
_BAR_OOPS = re.compile(r"(?:KASAN|KFENCE|KMSAN|KCSAN|UBSAN):")


def strip_line(line: str) -> tuple[str, str | None]:
    """Return (line without console prefixes, printk caller id or None)."""
    if "\r" in line:
        line = line.rstrip("\r")
        line = line[line.rfind("\r") + 1:]
    if not line:
        return line, None
    ch = line[0]
    if ch != "[" and ch != "<":
        m = _TS_RE.search(line, 0, 120)
        if m is None:
            return line, None
        line = line[m.start():]
    m = _PREFIX_RE.match(line)
    end = m.end()
    return (line[end:] if end else line), m.group(1)


# Block version of strip_line: one C-level pass over many lines.  It does not handle junk
# glued before the timestamp ("login: [ 1.2] ..."); report header lines use strip_line.
# Splitting "\n" + block gives ['', ctx, end, bar, line, ctx, end, bar, line, ...]: the caller
# id, whether the stripped line is a report end marker (_END_RES) or a KASAN bar (_KASAN_BAR),
# and the stripped line.  The lookahead always succeeds (empty branch), so the prefix matched
# is the same as without it.
_BLOCK_SPLIT_RE = re.compile(
    r"\n(?:<[0-9]+>)?(?:\[ *[0-9]+\.[0-9]+\])?(?:\[ *([TC][0-9]+)\])? ?"
    r"(?=(---\[ end trace|---\[ end Kernel panic|Kernel Offset:|Rebooting in [0-9]+ seconds)"
    r"|(={40,}[^\S\n]*(?:\n|\Z))|)"
)


class _Chunk:
    """Stripped lines [a, b) of the log: text, caller ids and end-marker line numbers."""

    __slots__ = ("a", "b", "strs", "ctxs", "ends", "bars")

    def __init__(self, a: int, b: int, strs: list[str], ctxs: list, ends: list[int], bars: list[int]):
        self.a, self.b, self.strs, self.ctxs = a, b, strs, ctxs
        self.ends, self.bars = ends, bars  # absolute line numbers, ascending

    def by_ctx(self, ctx: str, first: int, stop: int) -> tuple[list[int], list[str]]:
        """(line numbers, stripped lines) in [first, stop) of the lines printed by ``ctx``."""
        i, j = first - self.a, stop - self.a
        sel = list(map(eq, self.ctxs[i:j], repeat(ctx)))
        return list(compress(range(first, stop), sel)), list(compress(self.strs[i:j], sel))

    def first_marker(self, first: int, stop: int, marks: list[int], ctx: str | None) -> int:
        """First line in ``marks`` within [first, stop) printed by ``ctx`` (any if None), else stop."""
        for i in range(bisect_left(marks, first), len(marks)):
            e = marks[i]
            if e >= stop:
                break
            if ctx is None or self.ctxs[e - self.a] == ctx:
                return e
        return stop


class _StrippedLines:
    """Stripped text and caller ids for the union of all report ranges, computed once."""

    def __init__(self, lines: list[str], text: str, ranges: list[tuple[int, int]]):
        self.chunks: list[_Chunk] = []
        cur, off = 0, 0  # char offset of line ``cur``
        for a, b in _merge(ranges):
            off += sum(map(len, lines[cur:a])) + (a - cur)
            end = off + sum(map(len, lines[a:b])) + (b - a) - 1  # the "\n" ending line b-1
            cur, off_a, off = b, off, end + 1
            block = ("\n" + text[:end]) if off_a == 0 else text[off_a - 1:end]
            if "\r" in block:
                pairs = [strip_line(ln) for ln in lines[a:b]]
                strs, ctxs = [p[0] for p in pairs], [p[1] for p in pairs]
                ends = [a + k for k, s in enumerate(strs) if _END_RES.match(s)]
                bars = [a + k for k, s in enumerate(strs) if _KASAN_BAR.match(s)]
            else:
                parts = _BLOCK_SPLIT_RE.split(block)
                ctxs, strs = parts[1::4], parts[4::4]
                ends = list(compress(range(a, b), parts[2::4]))
                bars = list(compress(range(a, b), parts[3::4]))
            self.chunks.append(_Chunk(a, b, strs, ctxs, ends, bars))
        self._starts = [c.a for c in self.chunks]

    def chunk(self, line: int) -> _Chunk:
        return self.chunks[bisect_right(self._starts, line) - 1]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _oops_re(heads) -> re.Pattern:
    return re.compile("|".join(re.escape(h) for h in sorted(heads, key=len, reverse=True)))


_HEADERS = {o.header for o in F.OOPSES}
# The header scan is the one pass over the whole log.  A regex alternation is slow at every
# position whose character could start a header, and lowercase first letters are everywhere,
# so headers starting with an uppercase letter go to a regex (rare first characters) and the
# others to str.find.  Only the set of lines containing a header matters.
_UPPER_HEADS = _oops_re(h for h in _HEADERS if "A" <= h[0] <= "Z")
_OTHER_HEADS = tuple(sorted(h for h in _HEADERS if not "A" <= h[0] <= "Z"))


def _header_positions(text: str) -> list[int]:
    """Ascending offsets of header occurrences: at least the first one on every line with one."""
    found = [m.start() for m in _UPPER_HEADS.finditer(text)]
    find = text.find
    for h in _OTHER_HEADS:
        i = find(h)
        while i >= 0:
            found.append(i)
            i = find(h, i + len(h))
    found.sort()
    return found


def _match_oops(line: str) -> F.Oops | None:
    for oops in F.OOPSES:
        if oops.anchored:
            if not line.startswith(oops.header):
                continue
        else:
            pos = line.find(oops.header)
            if pos < 0:
                continue
            # "ODEBUG:" / "DEBUG:" are not "BUG:".
            if pos > 0 and (line[pos - 1].isalnum() or line[pos - 1] == "_"):
                pos = _find_word(line, oops.header, pos)
                if pos < 0:
                    continue
        if any(s.search(line) for s in oops.suppressions):
            continue
        return oops
    return None


def _find_word(line: str, header: str, pos: int) -> int:
    """First ``header`` in ``line`` from ``pos`` that is not the tail of a longer word.

    Output glued onto a header ("executing program 1BUG: KASAN: ...") still counts, so an
    uppercase header is only refused after an uppercase letter or "_" ("ODEBUG:", "DEBUG:",
    "XFS_WARNING:"); a lowercase one after any letter, digit or "_"."""
    upper = header[0].isupper()
    while pos >= 0:
        if pos == 0:
            return pos
        ch = line[pos - 1]
        if not (ch == "_" or (ch.isupper() if upper else ch.isalnum())):
            return pos
        pos = line.find(header, pos + 1)
    return -1


def _benign_starts(text: str) -> list[int]:
    """Starts of the lines that contain one of BENIGN_KEYWORDS (every trigger contains
    one, checked at import). Triggers are matched later on the line with its printk
    timestamp/caller prefix stripped: matching the raw line would miss real logs."""
    cands = set()
    for k in F.BENIGN_KEYWORDS:
        i = text.find(k)
        while i >= 0:
            cands.add(text.rfind("\n", 0, i) + 1)
            i = text.find(k, i + len(k))
    return sorted(cands)


assert all(F._anchored(b.trigger) and any(k in b.trigger.pattern for k in F.BENIGN_KEYWORDS)
           for b in F.BENIGN), "BENIGN triggers must start with ^ and contain a BENIGN_KEYWORD"


def _benign_lines(lines: list[str], text: str) -> set[int]:
    """Line indices covered by known-benign blocks (see formats.BENIGN)."""
    out: set[int] = set()
    pos, line_no = 0, 0
    for start in _benign_starts(text):
        line_no += text.count("\n", pos, start)
        pos = start
        stripped, ctx = strip_line(lines[line_no])
        for b in F.BENIGN:
            if not b.trigger.search(stripped):
                continue
            out.add(line_no)
            j = line_no + 1
            while j < len(lines) and j - line_no <= b.max_lines:
                s, c = strip_line(lines[j])
                if c != ctx and c is not None and ctx is not None:
                    j += 1
                    continue
                if not s.strip() or not b.continuation.match(s):
                    break
                out.add(j)
                j += 1
            break
    return out


@dataclass
class _Start:
    line: int
    oops: F.Oops
    ctx: str | None
    stripped: str


def _find_starts(lines: list[str], text: str) -> list[_Start]:
    benign = set()
    if any(k in text for k in F.BENIGN_KEYWORDS):
        benign = _benign_lines(lines, text)
    starts: list[_Start] = []
    pos, line_no, last = 0, 0, -1
    for start in _header_positions(text):
        line_no += text.count("\n", pos, start)
        pos = start
        if line_no == last or line_no in benign:
            continue
        last = line_no
        stripped, ctx = strip_line(lines[line_no])
        oops = _match_oops(stripped)
        if oops is not None and not _is_replay(lines, line_no):
            starts.append(_Start(line_no, oops, ctx, stripped))
    return starts


def _is_replay(lines: list[str], line_no: int) -> bool:
    """The console re-prints a message it printed before (printk's console replay marks it
    with this line, next to the replayed header): not a new report."""
    marker = "** replaying previous printk message **"
    return ((line_no + 1 < len(lines) and marker in lines[line_no + 1])
            or (line_no > 0 and marker in lines[line_no - 1]) or marker in lines[line_no])


def _same_ctx(a: str | None, b: str | None) -> bool:
    return a == b or a is None or b is None


def _group(starts: list[_Start]) -> list[_Start]:
    """Drop follow-ups (panic after an oops, "Oops:" after "BUG: unable to handle") of the
    report open in the same context; the rest start reports."""
    heads: list[_Start] = []
    last_by_ctx: dict[str | None, int] = {}  # ctx -> index in heads of its latest head
    for s in starts:
        if s.ctx is None:
            i = len(heads) - 1
        else:  # latest head of this context or without one
            i = max(last_by_ctx.get(s.ctx, -1), last_by_ctx.get(None, -1))
        prev = heads[i] if i >= 0 else None
        if prev is not None and s.oops.followup is not None and s.oops.followup.search(s.stripped):
            continue
        # arm64 prints ~20 lines of abort info between "Unable to handle" and "Internal error".
        if prev is not None and s.line - prev.line <= 40 and _is_oops_continuation(prev, s):
            continue
        last_by_ctx[s.ctx] = len(heads)
        heads.append(s)
    return heads


def _limits(heads: list[_Start], nlines: int) -> list[int]:
    """Per head: line of the next interrupting head of the same context (or without one)."""
    out = [nlines] * len(heads)
    next_any = next_none = nlines
    next_by_ctx: dict[str, int] = {}
    for i in range(len(heads) - 1, -1, -1):
        h = heads[i]
        if h.ctx is None:
            out[i] = next_any
        else:
            out[i] = min(next_by_ctx.get(h.ctx, nlines), next_none)
        if h.oops.interrupts:
            next_any = h.line
            if h.ctx is None:
                next_none = h.line
            else:
                next_by_ctx[h.ctx] = h.line
    return out


def parse(log: str) -> list[Report]:
    """Every kernel report in ``log`` in order of appearance."""
    if not isinstance(log, str):
        log = log.decode("utf-8", "replace")
    lines = log.split("\n")
    if len(log) > _MAX_LINE and _clip_long_lines(lines):
        log = "\n".join(lines)
    return _parse_lines(lines, log, 0, len(lines))


# printk lines are at most ~1 KiB; a longer console line is output glued together (or
# hostile input).  Clipping bounds every per-line regex, so parsing stays linear in the log
# size even for a 50 MB line of repeated report headers.
_MAX_LINE = 4096
_CLIP_BEFORE_HEADER = 256


def _clip(line: str) -> str:
    """At most _MAX_LINE chars of ``line``: from its start, or from just before its first
    report header when that lies further in (within its first _MAX_RAW_LINE chars, as
    iter_reports reads it)."""
    line = line[:_MAX_RAW_LINE]
    first = len(line)
    m = _UPPER_HEADS.search(line)
    if m is not None:
        first = m.start()
    for h in _OTHER_HEADS:
        i = line.find(h, 0, first)
        if 0 <= i < first:
            first = i
    start = 0 if first + 128 < _MAX_LINE else first - _CLIP_BEFORE_HEADER
    return line[start:start + _MAX_LINE]


def _clip_long_lines(lines: list[str]) -> bool:
    """Clip over-long lines in place; True if any was."""
    if max(map(len, lines)) <= _MAX_LINE:
        return False
    for i, ln in enumerate(lines):
        if len(ln) > _MAX_LINE:
            lines[i] = _clip(ln)
    return True


def _parse_lines(lines: list[str], log: str, emit_from: int, emit_to: int) -> list[Report]:
    """Reports of ``lines`` (``log`` is their "\\n" join) whose header line is in
    [emit_from, emit_to); earlier lines still group follow-ups into their reports."""
    starts = _find_starts(lines, log)
    # Group follow-ups (panic after an oops, "Oops:" after "BUG: unable to handle") into the
    # report open in the same context.
    heads = _group(starts)
    spans = []
    for h, limit in zip(heads, _limits(heads, len(lines))):
        ext = min(len(lines), limit + _MAX_EXTRA_LINES) if h.ctx is not None else limit
        spans.append((limit, min(ext, h.line + _MAX_REPORT_LINES)))
    keep = [(h, sp) for h, sp in zip(heads, spans) if emit_from <= h.line < emit_to]
    stripped = _StrippedLines(lines, log, [(h.line + 1, stop) for h, (_, stop) in keep])
    return [_build(lines, h, limit, stop, stripped) for h, (limit, stop) in keep]


# A report reaches at most this many lines past its header (see _parse_lines), so a window
# of the log that extends this far past its last emitted header describes it completely.
_WINDOW_OVERLAP = _MAX_REPORT_LINES + _MAX_EXTRA_LINES + 16
_MAX_RAW_LINE = 64 * 1024  # bytes of one line read before clipping; the rest is dropped


def _read_line_windows(stream, window: int):
    """Lists of decoded lines from a binary ``stream``, about ``window`` bytes each, cut at
    line ends; a line longer than _MAX_RAW_LINE bytes keeps only its start."""
    pending = b""  # unterminated start of a line (at most _MAX_RAW_LINE bytes)
    skipping = False  # dropping the rest of an over-long line
    while True:
        data = stream.read(window)
        if not data:
            if pending:
                yield [pending.decode("utf-8", "replace")]
            return
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data, skipping = data[nl:], False
        data = pending + data
        nl = data.rfind(b"\n")
        if nl < 0:
            complete, pending = None, data
        else:
            complete, pending = data[:nl], data[nl + 1:]
        if len(pending) > _MAX_RAW_LINE:
            pending, skipping = pending[:_MAX_RAW_LINE], True
        if complete is not None:
            yield complete.decode("utf-8", "replace").split("\n")


def iter_reports(stream, window: int = 8 << 20):
    """Reports of the log read from binary ``stream``, in order, like ``parse`` of the whole
    log (same line numbers), with memory bounded by ``window``: the log is parsed in windows
    that overlap by _WINDOW_OVERLAP lines on both sides."""
    buf: list[str] = []
    base = 0  # line number of buf[0] in the whole log
    done = 0  # reports with a header line before this were yielded
    windows = _read_line_windows(stream, window)
    eof = False
    while not eof:
        size = 0
        while size < window:
            part = next(windows, None)
            if part is None:
                eof = True
                break
            buf.extend(part)
            size += sum(map(len, part)) + len(part)
        end = base + len(buf)
        cut = end if eof else max(done, end - _WINDOW_OVERLAP)
        if cut > done:
            _clip_long_lines(buf)
            for r in _parse_lines(buf, "\n".join(buf), done - base, cut - base):
                r.start_line += base
                r.end_line += base
                yield r
            done = cut
        drop = max(0, done - _WINDOW_OVERLAP - base)
        del buf[:drop]
        base += drop


_KASAN_RANGE = re.compile(r"KASAN: [a-z\- ]+ in range \[")
_OOPS_LINE = re.compile(r"^(?:Oops(?:: | \[| -)|Internal error: Oops|invalid opcode:)")


def _is_oops_continuation(prev: _Start, s: _Start) -> bool:
    # "BUG: unable to handle ..." / "kernel BUG at" are followed by an "Oops: [#1]" or
    # "invalid opcode: 0000 [#1]" line that belongs to the same report.
    if s.stripped.startswith("unreferenced object") and "BUG: memory leak" in prev.stripped:
        return True  # kmemleak's object dump and backtrace belong to its BUG line
    if _KASAN_RANGE.match(s.stripped):
        return True  # KASAN's guess at the faulting range, printed by the GPF/page fault handler
    return bool(_OOPS_LINE.match(s.stripped)) and prev.oops.header != s.oops.header


def _build(lines: list[str], h: _Start, limit: int, stop: int, pre: _StrippedLines) -> Report:
    """Collect the report's lines (same caller context only) and describe it.

    The report runs from the header to the first end marker (or KASAN bar for sanitizer
    reports) of its context, at most up to ``stop``.  With printk caller ids a later report in
    the same context does not cut the text used for the title (as in syzkaller): interleaving
    is already resolved by the context.
    """
    hctx = h.ctx
    first = h.line + 1
    body: list[str] = []
    idx: list[int] | None = None
    last = first  # one past the last line used (no-context reports)
    if first < stop:
        ch = pre.chunk(first)
        e = ch.first_marker(first, stop, ch.ends, hctx)
        if _BAR_OOPS.search(h.stripped):
            e = min(e, ch.first_marker(first, e, ch.bars, hctx))
        if hctx is None:
            last = min(e + 1, stop)
            body = ch.strs[first - ch.a:last - ch.a]
        else:
            idx, body = ch.by_ctx(hctx, first, min(e + 1, stop))
    stripped = [h.stripped] + body
    title, typ, frame, corrupted, reason, frames = _describe_cached(h.oops.header, tuple(stripped))
    if idx is None:
        n = min(limit, last) - h.line
    else:
        idx.insert(0, h.line)
        n = bisect_left(idx, limit)
    while n > 1 and not stripped[n - 1].strip():
        n -= 1
    if idx is None:
        text, end_line = "\n".join(lines[h.line:h.line + n]), h.line + n - 1
    else:
        text, end_line = "\n".join(map(lines.__getitem__, idx[:n])), idx[n - 1]
    return Report(
        title=title, type=typ, frame=frame, frames=list(frames),
        text=text, corrupted=corrupted, start_line=h.line,
        end_line=end_line, caller=hctx, corrupted_reason=reason,
    )


_OOPS_BY_HEADER = {o.header: o for o in F.OOPSES}


class _DescribeCache:
    """LRU of report descriptions bounded by the characters of the keys it holds (not by
    entries: one entry can be a thousand 4 KiB lines), so memory stays bounded."""

    def __init__(self, max_chars: int = 16 << 20):
        self.max_chars, self.chars = max_chars, 0
        self.entries: OrderedDict[tuple, tuple[int, tuple]] = OrderedDict()

    def __call__(self, header: str, stripped: tuple[str, ...]):
        key = (header, stripped)
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            return hit[1]
        value = _describe_uncached(header, stripped)
        size = sum(map(len, stripped))
        if size <= self.max_chars // 4:
            self.entries[key] = (size, value)
            self.chars += size
            while self.chars > self.max_chars:
                _, (old, _) = self.entries.popitem(last=False)
                self.chars -= old
        return value

    def cache_clear(self) -> None:
        self.entries.clear()
        self.chars = 0


def _describe_uncached(header: str, stripped: tuple[str, ...]):
    lines = list(stripped)
    title, typ, frame, corrupted, reason, trace = describe(_OOPS_BY_HEADER[header], "\n".join(lines), lines)
    frames = []
    if trace is not None:
        for ln in lines[trace[0]:trace[1]]:
            fr = parse_frame_line(ln)
            if fr is not None:
                frames.append(fr)
    return title, typ, frame, corrupted, reason, tuple(frames)


# Identical reports (a WARN_ON hit in a loop) differ only in the stripped timestamps.
_describe_cached = _DescribeCache()


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


def describe(oops: F.Oops, text: str, lines: list[str]):
    """Title, type, guilty frame, corrupted flag+reason and trace line range for a report."""
    cands = []
    for idx, f in enumerate(oops.formats):
        m = f.title.search(text)
        if m is not None:
            cands.append((m.start(), idx, f, m))
    cands.sort(key=lambda c: (c[0], c[1]))
    for _, _, f, m in cands:
        if f.report is not None and not f.report.search(text):
            continue
        args = [g or "" for g in m.groups()]
        frame, reason, trace = None, None, None
        if f.stack is not None:
            first = _line_of(text, m.start())
            r = extract_frame(f.stack, lines[first:])
            frame, reason = r.frame, r.corrupted
            if r.trace is not None:
                trace = (first + r.trace[0], first + r.trace[1])
            if frame is None:
                frame = "corrupted"
                reason = reason or "extracted no stack frame"
            elif reason is not None and frame:
                reason = None  # fault-injection noise did not prevent finding the frame
            args.append(frame)
        title = normalize_title(f.fmt.format(*args))
        if reason is None and f.corrupted:
            reason = "report format is marked as corrupted"
        if reason is None and not f.no_stack:
            reason = _no_stack_reason(text)
        if trace is None:
            trace = _first_trace(lines)
        return (title, f.type or report_type(title, oops), None if frame == "corrupted" else frame,
                reason is not None, reason, trace)
    # Header seen but no format matched: keep the raw line, flag as corrupted.
    first = lines[0] if lines else ""
    pos = first.find(oops.header)
    title = normalize_title(first[pos:] if pos >= 0 else first)
    return title, report_type(title, oops), None, True, "matched no format", _first_trace(lines)


_STACK_KEYWORDS = (
    re.compile(r"Call (?:T|t)race"), re.compile(r"Allocated:"), re.compile(r"Allocated by task [0-9]+:"),
    re.compile(r"Freed:"), re.compile(r"Freed by task [0-9]+:"), re.compile(r"[^k] backtrace:"),
    re.compile(r"Backtrace:"), re.compile(r"Uninit was stored to memory at"),
    # KMSAN and KFENCE: the stack follows the title line (KFENCE: after its "... at 0x.." line).
    re.compile(r"BUG: KMSAN: [a-z\-]+ in [^\n]*"),
    re.compile(r"BUG: KFENCE: [a-z\- ]+ in [^\n]*(?:\n\n?[A-Z][a-z -]+ at 0x[^\n]*)?"),
)
_SYMBOLIZED_FRAME = re.compile(r"(?:[a-zA-Z0-9_.]+\+0x[0-9a-f]+/0x[0-9a-f]+|[a-zA-Z0-9_.]+ [^\s]+:\d+ \[inline\]|\[<[0-9a-f]+>\])")


def _no_stack_reason(text: str) -> str | None:
    """A report that should have a stack but has none (or an empty one) is truncated."""
    has = False
    for key in _STACK_KEYWORDS:
        m = key.search(text)
        if m is None:
            continue
        rest = text[m.end():].split("\n", 3)
        nxt = rest[1] if len(rest) > 1 else ""
        if (nxt.strip() in ("<IRQ>", "<TASK>", "<NMI>") or nxt.startswith("PID = ")) and len(rest) > 2:
            nxt = rest[2]
        if not nxt or not _SYMBOLIZED_FRAME.search(nxt):
            return "no frames after stack trace keyword"
        has = True
    if not has and _PC_FRAME_RUN.search(text):
        has = True  # riscv die(): "[<pc>] func+0x.." lines without a "Call Trace:" header
    return None if has else "no stack trace in report"


_PC_FRAME_RUN = re.compile(r"^\[<[0-9a-f]+>\] [A-Za-z0-9_.]+\+0x.*\n\[<[0-9a-f]+>\] [A-Za-z0-9_.]+\+0x", re.M)
_PC_FRAME_LINE = re.compile(r"^\[<[0-9a-f]+>\] [A-Za-z0-9_.]+\+0x")


def _first_trace(lines: list[str]) -> tuple[int, int] | None:
    for i, ln in enumerate(lines):
        if _PC_FRAME_LINE.match(ln):
            j = i
            while j < len(lines) and _PC_FRAME_LINE.match(lines[j]):
                j += 1
            return (i, j)
        if F.CALL_TRACE.search(ln):
            j = i + 1
            while j < len(lines) and not F.is_stack_start(lines[j]):
                j += 1
            return (i + 1, j)
    return None


# syz-executor5, syz-executor.5 and syz-executor5/123 name one program.
_EXECUTOR_RE = re.compile(r"syz-executor\.?[0-9]+(?:(?:/|:)[0-9]+)?")
_CPU_RE = re.compile(r"CPU#[0-9]+")
_FUNC_OFF_RE = re.compile(r"([a-zA-Z0-9_.]+)\+0x[0-9a-f]+/0x[0-9a-f]+")
_ADDR_RE = re.compile(r"(?<![A-Za-z0-9_])(?:0x[0-9a-f]+|(?=[0-9a-f]*[0-9])[0-9a-f]{6,})(?![A-Za-z0-9_])")
_NUM_RE = re.compile(r"(?<![A-Za-z0-9_.])[0-9]+(?![0-9])|[0-9]{5,}(?![0-9A-Za-z_])")


def normalize_title(title: str) -> str:
    """syzbot title conventions: no offsets, addresses or numbers that differ between runs."""
    title = _EXECUTOR_RE.sub("syz-executor", title)
    title = _CPU_RE.sub("CPU", title)
    title = _FUNC_OFF_RE.sub(r"\1", title)
    title = _ADDR_RE.sub("ADDR", title)
    title = _NUM_RE.sub("NUM", title)
    return title.strip()


_KASAN_KIND = re.compile(r"^(KASAN|KFENCE): ([a-z\- ]+?)(?: (Read|Write|read|write))?(?: in |$)")


def report_type(title: str, oops: F.Oops) -> str:
    m = _KASAN_KIND.match(title)
    if m:
        tool, kind, access = m.group(1), m.group(2), (m.group(3) or "").upper()
        if tool == "KFENCE" and kind == "memory corruption":
            return "KFENCE-MEMORY-CORRUPTION"
        if "free" in kind and "after" not in kind:
            return f"{tool}-INVALID-FREE"
        base = f"{tool}-"
        if "use-after-free" in kind:
            base += "USE-AFTER-FREE-"
        elif "null-ptr-deref" in kind:
            base += "NULL-POINTER-DEREFERENCE-"
        return base + (access or "READ")
    if title.startswith("KMSAN: kernel-infoleak") or title.startswith("KMSAN: kernel-usb-infoleak"):
        return "KMSAN-INFO-LEAK"
    if title.startswith("KMSAN: uninit-value"):
        return "KMSAN-UNINIT-VALUE"
    if title.startswith("KMSAN:"):
        return "KMSAN"
    if title.startswith("WARNING:") and ("lock" in title or "RCU" in title):
        return "LOCKDEP"
    return oops.type
