"""`kto report` subcommand."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

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


# --- kto report --build DIR ----------------------------------------------------------------

from test_report_symbolize import (  # noqa: E402  (pytest puts tests/ on sys.path)
    _fake_build, _inline_offset, _warning_log, needs_native, needs_tools,
)


@needs_tools
@needs_native
def test_build_symbolizes_with_store_dir(tmp_path, capsys):
    store = _fake_build(tmp_path)
    log = tmp_path / "console.log"
    off = _inline_offset(store / "vmlinux")
    log.write_text(_warning_log(off))
    assert main(["report", str(log), "--build", str(store)]) == 1
    out = capsys.readouterr().out
    assert "TITLE: WARNING in foo" in out and "TYPE: WARNING" in out and "FRAME: foo" in out
    assert "CORRUPTED: no" in out
    stack = out.split("STACK:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert stack[:3] == [
        "  helper (mm/t.c:3) [inline]",
        f"  foo+0x{off:x}/0x40 (mm/t.c:11)",
        "  modfn+0x1/0x10 [kto_test] (mm/mod.c:1)",
    ]
    assert stack[3].startswith("  main+0x5/0x20 (mm/t.c:") and stack[4] == "  nosuch_fn+0x5/0x20"
    # The same through --vmlinux/--modules, and JSON output carries the sources too.
    assert main(["report", "--json", str(log), "--vmlinux", str(store / "vmlinux"),
                 "--modules", str(store / "modules")]) == 1
    frames = json.loads(capsys.readouterr().out)[0]["frames"]
    assert [(f["func"], f["inline"], f["source"]) for f in frames[:3]] == [
        ("helper", True, "mm/t.c:3"), ("foo", False, "mm/t.c:11"), ("modfn", False, "mm/mod.c:1")]


@needs_tools
@needs_native
def test_build_tool_prefix_override(tmp_path, capsys):
    store = _fake_build(tmp_path)
    log = tmp_path / "console.log"
    log.write_text(_warning_log(0x10))
    rc = main(["report", str(log), "--build", str(store), "--tool-prefix", "kto-no-such-"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "kto-no-such-addr2line not found" in err and err.count("\n") == 1


def test_build_missing_dir_is_one_line_error(tmp_path, capsys):
    rc = main(["report", str(DATA / "riscv64_null_deref.log"), "--build", str(tmp_path / "nope")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("kto: error: symbolize: no such build directory") and err.count("\n") == 1


def test_build_and_vmlinux_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(DATA / "riscv64_null_deref.log"), "--build", str(tmp_path),
              "--vmlinux", str(tmp_path / "vmlinux")])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
