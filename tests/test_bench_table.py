"""bench/table.py, the benchmarks' markdown tables and bench/out/ files; and the benchmarks
that use it still import (they are never run here: most build kernels)."""
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
USERS = ["bisect_bench", "ci_cold", "overhead", "parser_memory", "pipeline_times", "race_catch", "yaml_cost"]


@pytest.fixture
def table(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))      # what running bench/X.py puts first
    import table
    return table


def test_markdown_lines(table):
    assert table.markdown(["stage", "seconds", "note"],
                          [("build", "12.5", "ok"), ("boot", 3, "")], "lrl") == [
        "| stage | seconds | note |",
        "|---|---:|---|",
        "| build | 12.5 | ok |",
        "| boot | 3 | |"]
    # Default: names left, numbers right; an empty header cell; a '|' cannot split a row.
    assert table.markdown(["", "runs"], [("a|b", 2)]) == [
        "| | runs |", "|---|---:|", "| a\\|b | 2 |"]


@pytest.mark.parametrize("header, rows, align", [
    (["a", "b"], [("1",)], None),
    (["a", "b"], [], "l"),
    (["a", "b"], [], "lx"),
])
def test_markdown_refuses_a_mismatch(table, header, rows, align):
    with pytest.raises(ValueError):
        table.markdown(header, rows, align)


def test_write_prints_and_saves_only_when_asked(table, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(table, "OUT", tmp_path / "out")
    path = table.write("x.md", "| a |\n", save=False)
    assert capsys.readouterr().out == "| a |\n\n" and not path.exists()
    path = table.write("x.md", "| a |\n")
    assert path == tmp_path / "out" / "x.md" and path.read_text() == "| a |\n"
    assert capsys.readouterr().out == "| a |\n\n"


@pytest.mark.parametrize("name", USERS)
def test_benchmarks_using_it_import(table, name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.markdown is table.markdown and callable(module.main)
