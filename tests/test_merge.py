"""kto merge on real shard results (the arm64 and riscv64 halves of a matrix-quick run).
The CI pipelines kto ci prints: tests/test_ci.py."""
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kcidb_io.schema import V5_3

from orchestrator import results
from orchestrator.commands import merge
from orchestrator.errors import KtoError

RUNS = Path(__file__).parent / "data" / "runs"


@pytest.fixture
def shards(tmp_path):
    """The two real matrix-quick results as shards 1/2 and 2/2 under one results root."""
    out = []
    for i, name in enumerate(["matrix-quick-arm64", "matrix-quick-riscv64"], 1):
        d = tmp_path / "results" / f"shard-{i}" / f"matrix-quick-{i}"
        shutil.copytree(RUNS / name, d)
        r = results.load(d)
        r.shard = f"{i}/2"
        r.write()
        out.append(d)
    return out


def test_merge_two_shards(shards, tmp_path):
    merged, problems = merge.merge(shards, tmp_path / "merged")
    assert problems == []
    assert [j.id for j in merged.jobs] == ["arm64", "riscv64"]
    assert merged.exit_code() == 0
    back = results.load(tmp_path / "merged")
    assert [j.id for j in back.jobs] == ["arm64", "riscv64"] and len(back.merged_from) == 2
    assert back.started == "2026-11-22T23:47:49Z" and back.finished.startswith("2026-11-23")
    for arch in ("arm64", "riscv64"):       # job directories came along, paths still valid
        assert (tmp_path / "merged" / arch / "console.log").is_file()
        assert (tmp_path / "merged" / f"{arch}/workloads/vmalloc.txt").is_file()
    # formats regenerated from the merged summary
    root = ET.parse(tmp_path / "merged" / "junit.xml").getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["arm64", "riscv64"]
    per_shard = sum(int(ET.parse(next(d.glob("junit.xml"))).getroot().get("tests"))
                    for d in shards)
    assert int(root.get("tests")) == per_shard
    data = json.loads((tmp_path / "merged" / "kcidb.json").read_text())
    V5_3.validate_exactly(data)
    assert sorted(b["architecture"] for b in data["builds"]) == ["arm64", "riscv64"]
    assert len(data["checkouts"]) == 1          # same source commit, no series
    # every KCIDB id of a shard's file is the same in the merged file (the two shards
    # started at different times; the merged run starts at the earlier)
    merged_ids = {o["id"] for k in ("checkouts", "builds", "tests") for o in data[k]}
    for d in shards:
        shard = json.loads((d / "kcidb.json").read_text())
        ids = {o["id"] for k in ("checkouts", "builds", "tests") for o in shard[k]}
        assert ids and ids <= merged_ids
    page = (tmp_path / "merged" / "index.html").read_text()
    assert "merged from 2 shard(s)" in page and page.count("<tr><td>") >= 2


def test_merge_finds_results_below_roots_and_reports_missing_shards(shards, tmp_path):
    merged, problems = merge.merge([tmp_path / "results"], tmp_path / "m1")
    assert [j.id for j in merged.jobs] == ["arm64", "riscv64"] and not problems
    r = results.load(shards[1])
    r.shard = "2/3"
    r.write()
    r = results.load(shards[0])
    r.shard = "1/3"
    r.write()
    merged, problems = merge.merge(shards, tmp_path / "m2")
    assert problems == ["shard 3/3 is missing"]


def test_merge_refuses_inconsistent_inputs(shards, tmp_path):
    with pytest.raises(KtoError, match="job 'arm64' is in two shards"):
        dup = tmp_path / "dup"
        shutil.copytree(shards[0], dup)
        r = results.load(dup)
        r.shard = "2/2"
        r.write()
        merge.merge([shards[0], dup], tmp_path / "m")
    other = tmp_path / "other"
    shutil.copytree(RUNS / "selftest-arm64", other)
    with pytest.raises(KtoError, match="different runs: matrix-quick, selftest"):
        merge.merge([shards[1], other], tmp_path / "m")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(KtoError, match="not empty"):
        merge.merge(shards, tmp_path / "full")
    with pytest.raises(KtoError, match="no summary.json"):
        merge.merge([tmp_path / "full"], tmp_path / "m3")


def test_kto_merge_cli_exit_codes(shards, tmp_path):
    def kto(*argv):
        return subprocess.run([sys.executable, "-m", "orchestrator", *map(str, argv)],
                              capture_output=True, text=True, cwd=tmp_path)
    out = kto("merge", *shards, "--out", tmp_path / "merged")
    assert out.returncode == 0, out.stderr
    assert "2 job(s)" in out.stdout
    out = kto("merge", shards[0], "--out", tmp_path / "half")
    assert out.returncode == 2 and "shard 2/2 is missing" in out.stdout
    shutil.copytree(RUNS / "selftest-arm64", tmp_path / "st")
    out = kto("merge", tmp_path / "st", "--out", tmp_path / "st-merged")
    assert out.returncode == 1                     # the lockdep report
    out = kto("merge", tmp_path / "nope", "--out", tmp_path / "x")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
