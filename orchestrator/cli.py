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
    "orchestrator.commands.build",
    "orchestrator.commands.shell",
    "orchestrator.commands.plan",
    "orchestrator.commands.nightly",
    "orchestrator.commands.merge",
    "orchestrator.commands.ci",
    "orchestrator.commands.cache",
    "orchestrator.commands.apply",
    "orchestrator.commands.check_series",
    "orchestrator.commands.bisect",
    "orchestrator.report.cli",
    "orchestrator.commands.complete",
]


def version() -> str:
    try:
        from importlib.metadata import version as dist_version
        return dist_version("kto")
    except Exception:       # running from a checkout that was never pip-installed
        return "unknown"


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    # Accepted before and after the subcommand: `kto -q run x` and `kto run x -q`.
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=2,
                   default=default, help="say more: every compiled object and the make "
                   "command line")
    g.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=0,
                   default=default, help="no progress lines: only results, verdicts and "
                   "errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kto",
        description="Kernel test orchestrator: build patched kernels for x86_64/arm64/riscv64, "
        "boot them under QEMU, run mm workloads, collect KASAN/lockdep reports.",
        epilog="runs.yaml is found as: --runs FILE, $KTO_RUNS, ./runs.yaml, kto's own "
        "checkout. Shell completion: source scripts/kto-completion.bash.")
    parser.add_argument("--version", action="version", version=f"kto {version()}",
                        help="print kto's version and exit")
    _add_verbosity(parser, 1)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for p in sub.choices.values():
        _add_verbosity(p, argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from orchestrator import verbosity
    verbosity.LEVEL = args.verbosity
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
