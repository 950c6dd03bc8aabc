"""Kernel console log report parser (syzkaller pkg/report style).

    from orchestrator.report import parse, Report, Frame, dedup, format_report
"""
from orchestrator.report.frames import Frame
from orchestrator.report.parser import Report, parse
from orchestrator.report.dedup import dedup, format_report

__all__ = ["parse", "Report", "Frame", "dedup", "format_report"]
