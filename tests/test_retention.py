"""kto cache prune on a scratch KTO_CACHE: least recently used first, down to the size;
recently used entries and build dirs under a held build lock survive."""
import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

from orchestrator import retention
from orchestrator.errors import ConfigError

MiB = 1 << 20
NOW = time.time()


def entry(path, mib, days_ago, marker="metadata.json"):
    path.mkdir(parents=True)
    (path / "blob").write_bytes(os.urandom(mib * MiB))
    (path / marker).write_text(json.dumps({"key": path.name}))
    t = NOW - days_ago * 86400
    for p in (path / "blob", path / marker, path):
        os.utime(p, (t, t))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "kto"
    entry(root / "builds" / "x86_64" / "old", 2, 30)
    entry(root / "builds" / "x86_64" / "mid", 2, 10)
    entry(root / "builds" / "arm64" / "new", 2, 1)
    entry(root / "builds" / "arm64" / "now", 2, 0)           # used minutes ago
    entry(root / "images" / "x86_64" / "img", 1, 20, "image")
    entry(root / "build-dirs" / "x86_64-main", 3, 25, ".config")
    entry(root / "linux.git", 1, 40, "HEAD")                 # never pruned
    (root / "builds" / "x86_64" / "objects-last-cold").write_text("1900")
    monkeypatch.setenv("KTO_CACHE", str(root))
    return root


def names(entries):
    return [e.path.name for e in entries]


def test_prune_oldest_first_down_to_size(cache):
    before = retention.du(cache)
    assert before >= 13 * MiB
    res = retention.prune(cache, int(7.5 * MiB), now=NOW)
    # oldest first (30d, 25d, 20d), stopping once under 7.5 MiB (13 MiB + small files)
    assert names(res.removed) == ["old", "x86_64-main", "img"]
    assert res.total_after <= 7.5 * MiB and retention.du(cache) <= 7.5 * MiB
    assert not (cache / "builds" / "x86_64" / "old").exists()
    assert (cache / "builds" / "x86_64" / "mid").exists()
    assert (cache / "linux.git" / "HEAD").exists()
    assert (cache / "builds" / "x86_64" / "objects-last-cold").exists()
    assert not list(cache.rglob(".prune-*"))


def test_recent_entries_kept_and_reported(cache):
    res = retention.prune(cache, 0, now=NOW)
    assert "now" in names(res.kept_recent) and (cache / "builds/arm64/now").exists()
    assert "linux.git" in res.skipped[-1]
    res = retention.prune(cache, 0, min_age=0, now=NOW)
    assert "now" in names(res.removed)


def test_build_dirs_not_touched_while_a_build_holds_the_lock(cache):
    with open(cache / "build.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        res = retention.prune(cache, 0, now=NOW)
    assert "x86_64-main" not in names(res.removed)
    assert (cache / "build-dirs" / "x86_64-main" / ".config").exists()
    assert any("build.lock" in s for s in res.skipped)


def test_dry_run_and_results(cache, tmp_path):
    results = tmp_path / "results"
    run_dir = results / "default-20260101-000000"
    entry(run_dir, 2, 50, "summary.json")
    (run_dir / "summary.json").write_text(json.dumps({"run": "default", "jobs": []}))
    (run_dir / ".kto-results").write_text("made by kto\n")
    t = NOW - 50 * 86400
    for p in (run_dir / "summary.json", run_dir):
        os.utime(p, (t, t))
    (results / "notes").mkdir()
    res = retention.prune(cache, 10 * MiB, results_root=results, dry_run=True, now=NOW)
    assert names(res.removed)[0] == "default-20260101-000000"
    assert (results / "default-20260101-000000").exists()
    retention.prune(cache, 10 * MiB, results_root=results, now=NOW)
    assert not (results / "default-20260101-000000").exists() and (results / "notes").exists()


@pytest.mark.parametrize("text,n", [("20G", 20 << 30), ("500M", 500 * MiB), ("1.5GiB",
                                    int(1.5 * (1 << 30))), ("1234", 1234), ("2k", 2048)])
def test_parse_size(text, n):
    assert retention.parse_size(text) == n


def test_bad_size_and_cli(cache):
    with pytest.raises(ConfigError, match="expected a size"):
        retention.parse_size("lots")
    env = dict(os.environ, KTO_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-m", "orchestrator", "cache", "prune",
                          "--max-size", "9M", "--min-age", "0"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "removed build" in out.stdout and "(limit 9.0 MiB)" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "orchestrator", "cache", "prune",
                          "--max-size", "x"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
