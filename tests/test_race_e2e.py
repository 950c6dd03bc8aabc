"""Race detection on real kernels (make test-race): the x86_64 debug-VM variant runs every
workload with no report the stock kernel does not have, and kto check-series flags the two
example race series (patches/examples/vma-unmap-nowait.mbox, hugetlb-walk-unlocked.mbox)
as new on it within a bounded number of runs; kto bisect names both culprits."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import config, known_issues, results
from orchestrator.cache import cache_root

# Also "slow": anything selecting fast tests with -m "not slow" must skip these.
pytestmark = [pytest.mark.race, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "patches" / "examples"
DEBUG_CMDLINE = "page_table_check=on debug_pagealloc=on page_owner=on init_on_free=1"
# Races are flaky by nature: check-series is repeated up to this many times (each a
# boot and one 30 s race program on a kernel the first attempt built).
ATTEMPTS = 3


def kto(*args):
    cp = subprocess.run([sys.executable, "-m", "orchestrator", *map(str, args)], cwd=REPO,
                        capture_output=True, text=True)
    return cp.returncode, cp.stdout, cp.stderr


def test_debug_vm_variant_runs_every_workload_without_new_reports(tmp_path):
    rc, out, err = kto("run", "race", "--job", "x86_64.debug-vm", "--results", tmp_path)
    [d] = tmp_path.iterdir()
    res = results.load(d)
    [job] = res.jobs
    assert job.outcome == "ok", (job.error, out[-3000:], err[-2000:])
    # The boot options reached the kernel, and the kernel has the checks they enable.
    console = (d / job.id / "console.log").read_text(errors="replace")
    assert DEBUG_CMDLINE in console
    cfg = (cache_root() / job.build["dir"] / "config").read_text()   # dir: cache-relative
    for sym in ("DEBUG_VM", "PAGE_TABLE_CHECK", "DEBUG_PAGEALLOC", "PAGE_OWNER", "KASAN",
                "PROVE_LOCKING"):
        assert f"CONFIG_{sym}=y" in cfg, sym
    got = {w.workload: w for w in job.workloads}
    assert sorted(got) == sorted(config.load(REPO / "runs.yaml")["race"].workloads)
    for w in got.values():
        bad = [(t.name, t.status, t.detail) for t in w.tests
               if t.status not in ("pass", "skip", "xfail")]
        assert w.status == "pass" and not bad, (w.workload, w.status, w.reason, bad)
    assert {t.name for t in got["mm-race"].tests} == {"vma-fault", "anon-fork",
                                                      "hugetlb-pmd-share"}
    assert all(t.status == "pass" for t in got["mm-race"].tests)
    # Zero reports, or only reports known-issues.yaml records for this run and arch.
    known = known_issues.load(REPO / "known-issues.yaml")
    unknown = [r.title for r in job.reports
               if not known_issues.match(known, r.title, job.arch, "race")]
    assert unknown == [], unknown
    assert rc == (1 if job.reports else 0), out[-2000:]


def _check_series_until_new(tmp_path, series, run):
    """check-series up to ATTEMPTS times; returns (attempts used, last check-series data)."""
    data = None
    for attempt in range(1, ATTEMPTS + 1):
        where = tmp_path / f"attempt{attempt}"
        rc, out, err = kto("check-series", EX / series, "--run", run, "--results", where)
        assert rc in (0, 1), out + err
        [summary] = where.glob("*/check-series.json")
        data = json.loads(summary.read_text())["arches"]["x86_64"]
        assert data["base"]["titles"] == [], data["base"]   # the stock kernel is clean
        if data["new"]:
            assert rc == 1, out
            return attempt, data
    return None, data


def test_check_series_flags_the_vma_race_series(tmp_path):
    attempt, data = _check_series_until_new(tmp_path, "vma-unmap-nowait.mbox", "race-vma")
    assert attempt is not None, f"not caught in {ATTEMPTS} runs: {data}"
    print(f"vma-unmap-nowait caught on attempt {attempt}: {data['new']}")
    # One race, many symptoms (a KASAN use-after-free, VM_BUG_ONs in different places,
    # a WARNING): bisect on any report the base does not print, not on one title.
    rc, out, err = kto("bisect", EX / "vma-unmap-nowait.mbox", "--run", "race-vma",
                       "--title", ".", "--results", tmp_path / "bisect")
    [result] = (tmp_path / "bisect").glob("*/bisect.json")
    v = json.loads(result.read_text())["verdict"]
    assert v["status"] == "found" and v["first_bad"] == [2], out + err
    assert 'culprit: patch 2/3 "mm/vma: do not wait for VMA readers when gathering VMAs ' \
        'to unmap"' in out


def test_check_series_flags_the_hugetlb_walker_series_and_bisect_names_it(tmp_path):
    attempt, data = _check_series_until_new(tmp_path, "hugetlb-walk-unlocked.mbox",
                                            "race-hugetlb")
    assert attempt is not None, f"not caught in {ATTEMPTS} runs: {data}"
    # Whatever the report, the patch that changed the walker is the one suspected.
    for title in data["new"]:
        assert data["suspects"][title][:1] == [
            'patch 2/3 "mm/pagewalk: skip the hugetlb vma lock for read-only walks"'], data
    rc, out, err = kto("bisect", EX / "hugetlb-walk-unlocked.mbox", "--run", "race-hugetlb",
                       "--results", tmp_path / "bisect")
    [result] = (tmp_path / "bisect").glob("*/bisect.json")
    v = json.loads(result.read_text())["verdict"]
    assert v["status"] == "found" and v["first_bad"] == [2], out + err
    assert 'culprit: patch 2/3 "mm/pagewalk: skip the hugetlb vma lock for read-only walks"' \
        in out
