"""``kto report LOG``: parse a console log, print reports and a dedup summary.

With ``--build DIR`` (a kto build store directory) or ``--vmlinux`` the stack frames are
symbolized: ``func+0xoff/0xsize (file:line)``, inline frames marked ``[inline]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.report.dedup import format_report
from orchestrator.report.parser import Report, iter_reports


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="extract kernel bug reports (KASAN, lockdep, WARNING, ...) from a console log",
        description="Parse a kernel console log like syzkaller's pkg/report. Exit 0: no reports, "
        "1: reports found, 2: error.",
    )
    p.add_argument("log", type=Path, metavar="LOG", help="console log file")
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--build", type=Path, metavar="DIR",
                     help="kto build store directory (vmlinux, modules/, metadata.json): symbolize "
                     "frames with its vmlinux and modules and the binutils of its arch")
    sym.add_argument("--vmlinux", type=Path, help="vmlinux with debug info to symbolize frames")
    p.add_argument("--modules", type=Path, metavar="DIR",
                   help="directory with module .ko files (default with --build: DIR/modules)")
    p.add_argument("--tool-prefix", default=None, metavar="PREFIX",
                   help="binutils prefix for cross builds, e.g. aarch64-linux-gnu- "
                   "(default with --build: from the build's arch)")
    p.add_argument("--source-root", metavar="DIR",
                   help="show source files relative to this kernel tree (a .../trees/<slot>/ "
                   "prefix is always dropped)")
    p.add_argument("--json", action="store_true", help="print a JSON list of reports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.log
    if not path.is_file():
        raise KtoError(f"report: no such log file: {path}")
    if args.modules is not None and not args.modules.is_dir():
        raise KtoError(f"report: no such modules directory: {args.modules}")
    try:
        with path.open("rb") as f:
            if args.build is None and args.vmlinux is None:
                # Streamed: memory stays bounded however large the log is.
                return _print(iter_reports(f), args.json)
            reports = list(iter_reports(f))
    except OSError as e:
        raise KtoError(f"report: cannot read {path}: {e.strerror}")
    if args.build is not None:
        from orchestrator.report.symbolize import build_inputs, symbolize

        vmlinux, modules, prefix = build_inputs(args.build)
        symbolize(reports, vmlinux, args.modules or modules,
                  prefix if args.tool_prefix is None else args.tool_prefix, args.source_root)
    else:
        from orchestrator.report.symbolize import symbolize

        symbolize(reports, args.vmlinux, args.modules, args.tool_prefix or "", args.source_root)
    return _print(reports, args.json)


def _print(reports: Iterable[Report], as_json: bool) -> int:
    """Print reports as they come (JSON list or text plus a dedup summary); 1 if any."""
    n = 0
    counts: dict[str, int] = {}
    if as_json:
        print("[", end="")
    for r in reports:
        if as_json:
            item = json.dumps(dataclasses.asdict(r), indent=2)
            print(("," if n else "") + "\n  " + item.replace("\n", "\n  "), end="")
        else:
            print(format_report(r))
            print()
            counts[r.title] = counts.get(r.title, 0) + 1
        n += 1
    if as_json:
        print("\n]" if n else "]")
    else:
        print(f"{n} report(s), {len(counts)} unique:")
        for title, count in counts.items():
            print(f"  {count:4d}  {title}")
    return 1 if n else 0
