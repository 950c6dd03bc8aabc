"""kto command line. Each subcommand lives beside the stage it drives and registers itself
here through a ``register(subparsers)`` function that sets ``func`` (args -> exit code)."""
from __future__ import annotations

import argparse
import importlib
import sys

from orchestrator.errors import KtoError

# Modules that provide subcommands, in --help order.
COMMAND_MODULES = [
    "orchestrator.commands.run",
    "orchestrator.commands.plan",
    "orchestrator.commands.nightly",
    "orchestrator.commands.merge",
    "orchestrator.commands.ci",
    "orchestrator.commands.cache",
    "orchestrator.commands.apply",
    "orchestrator.commands.check_series",
    "orchestrator.commands.bisect",
    "orchestrator.report.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kto",
        description="Kernel test orchestrator: build patched kernels for x86_64/arm64/riscv64, "
        "boot them under QEMU, run mm workloads, collect KASAN/lockdep reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KtoError as e:
        print(f"kto: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("kto: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
