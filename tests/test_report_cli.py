"""`kto report` subcommand."""
from __future__ import annotations

import json
from pathlib import Path

import argparse
import sys

from orchestrator import cli as root
from orchestrator.errors import KtoError
from orchestrator.report import cli as report_cli

DATA = Path(__file__).parent / "data" / "reports"


def main(argv: list[str]) -> int:
    """Like ``kto`` (orchestrator.cli.main), with the report subcommand registered even while
    the root CLI has it disabled."""
    if "orchestrator.report.cli" in root.COMMAND_MODULES:
        return root.main(argv)
    parser = argparse.ArgumentParser(prog="kto")
    report_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KtoError as e:
        print(f"kto: error: {e}", file=sys.stderr)
        return e.exit_code


def test_report_found_exit_1(capsys):
    rc = main(["report", str(DATA / "riscv64_null_deref.log")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "TITLE: BUG: unable to handle kernel NULL pointer dereference in folio_mapping" in out
    assert "1 report(s), 1 unique:" in out


def test_no_reports_exit_0(capsys):
    assert main(["report", str(DATA / "test_vmalloc_benign.log")]) == 0
    assert "0 report(s)" in capsys.readouterr().out


def test_json(capsys):
    assert main(["report", "--json", str(DATA / "riscv64_null_deref.log")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data[0]["type"] == "NULL-POINTER-DEREFERENCE"
    assert data[0]["frames"][0]["func"] == "folio_mapping"


def test_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.log")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kto: error: report: no such log file") and err.count("\n") == 1


def test_missing_vmlinux_is_error(tmp_path, capsys):
    rc = main(["report", str(DATA / "riscv64_null_deref.log"), "--vmlinux", str(tmp_path / "vmlinux")])
    assert rc == 2
    assert "no such vmlinux" in capsys.readouterr().err
