"""``kto report LOG``: parse a console log, print reports and a dedup summary.

With ``--build DIR`` (a kto build store directory) or ``--vmlinux`` the stack frames are
symbolized: ``func+0xoff/0xsize (file:line)``, inline frames marked ``[inline]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.report.dedup import dedup, format_report
from orchestrator.report.parser import parse


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
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as e:
        raise KtoError(f"report: cannot read {path}: {e.strerror}")
    reports = parse(text)
    if args.modules is not None and not args.modules.is_dir():
        raise KtoError(f"report: no such modules directory: {args.modules}")
    if args.build is not None:
        from orchestrator.report.symbolize import build_inputs, symbolize

        vmlinux, modules, prefix = build_inputs(args.build)
        symbolize(reports, vmlinux, args.modules or modules,
                  prefix if args.tool_prefix is None else args.tool_prefix, args.source_root)
    elif args.vmlinux is not None:
        from orchestrator.report.symbolize import symbolize

        symbolize(reports, args.vmlinux, args.modules, args.tool_prefix or "", args.source_root)
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in reports], indent=2))
    else:
        for r in reports:
            print(format_report(r))
            print()
        groups = dedup(reports)
        print(f"{len(reports)} report(s), {len(groups)} unique:")
        for title, count, _ in groups:
            print(f"  {count:4d}  {title}")
    return 1 if reports else 0
