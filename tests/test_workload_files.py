"""Workload files: the shipped ones load; bad ones name file, line and problem."""
import pytest

from orchestrator import workload
from orchestrator.errors import ConfigError


def test_shipped_workloads_load():
    names = workload.available()
    assert {"vmalloc", "kasan-kunit"} <= set(names)
    for n in names:
        wl = workload.load(n)
        assert wl.preset in wl.presets


def test_bad_workload_file(tmp_path):
    (tmp_path / "w.yaml").write_text("name: w\nkind: module\nmodule: m\npresets: {a: []}\n"
                                     "preset: b\nresults: vmalloc-summary\n")
    with pytest.raises(ConfigError, match=r"w.yaml:5: preset: 'b' is not one of the presets"):
        workload.load("w", tmp_path)
    (tmp_path / "w.yaml").write_text("name: w\nkind: module\nmodule: m\npresets: {a: []}\n"
                                     "preset: a\nresults: tap\n")
    with pytest.raises(ConfigError, match=r"w.yaml:6: results: unknown value 'tap'"):
        workload.load("w", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown workload 'nope'"):
        workload.load("nope", tmp_path)
