"""Grouping and printing of reports."""
from __future__ import annotations

from collections.abc import Iterable

from orchestrator.report.frames import Frame
from orchestrator.report.parser import Report


def dedup(reports: Iterable[Report]) -> list[tuple[str, int, Report]]:
    """(title, count, first report) per unique title, in first-seen order.

    Accepts any iterable, so reports from several logs/runs can be chained together.
    """
    seen: dict[str, list] = {}
    for r in reports:
        entry = seen.get(r.title)
        if entry is None:
            seen[r.title] = [r.title, 1, r]
        else:
            entry[1] += 1
    return [tuple(e) for e in seen.values()]


def format_report(report: Report) -> str:
    """Human-readable block: title, type, guilty frame, corrupted flag, stack."""
    out = [
        f"TITLE: {report.title}",
        f"TYPE: {report.type}",
        f"FRAME: {report.frame or '-'}",
        f"CORRUPTED: {'yes' if report.corrupted else 'no'}"
        + (f" ({report.corrupted_reason})" if report.corrupted and report.corrupted_reason else ""),
        f"LINES: {report.start_line + 1}-{report.end_line + 1}"
        + (f"  CALLER: {report.caller}" if report.caller else ""),
    ]
    if report.frames:
        out.append("STACK:")
        out.extend(f"  {format_frame(f)}" for f in report.frames)
    return "\n".join(out)


def format_frame(f: Frame) -> str:
    """``func+0xoff/0xsize [module] (file:line)``, inline frames end with `` [inline]``."""
    name = f.func or (f"0x{f.addr:x}" if f.addr is not None else "?")
    if f.offset is not None:
        name += f"+0x{f.offset:x}" + (f"/0x{f.size:x}" if f.size is not None else "")
    if f.module:
        name += f" [{f.module}]"
    if f.source:
        name += f" ({f.source})"
    if f.inline:
        name += " [inline]"
    return name
