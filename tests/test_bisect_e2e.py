"""Real series, real kernels: check-series and bisect over patches/examples on x86_64.
Every step is a real incremental build in the persistent build directory (a store hit
when repeated), a real boot and the run's workload."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

# Also "slow": anything selecting fast tests with -m "not slow" must skip these.
pytestmark = [pytest.mark.bisect, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "patches" / "examples"


def kto(*args, cwd=REPO):
    cp = subprocess.run([sys.executable, "-m", "orchestrator", *map(str, args)], cwd=cwd,
                        capture_output=True, text=True)
    return cp.returncode, cp.stdout, cp.stderr


def test_series_that_does_not_apply_names_patch_and_hunk(tmp_path):
    rc, out, err = kto("check-series", EX / "does-not-apply.mbox", "--run", "examples",
                       "--results", tmp_path)
    assert rc == 2, out + err
    assert err.strip().splitlines() == [
        'kto: error: patch 2/3 "mm/vmalloc: count vm_unmap_ram() calls too" does not apply: '
        'hunk 3 of mm/vmalloc.c (@@ -3035,10 +3044,6 @@ EXPORT_SYMBOL(vm_unmap_ram);)']
    assert "Traceback" not in err and not any(tmp_path.iterdir())


def test_check_series_finds_the_new_kasan_report_and_its_suspect(tmp_path):
    rc, out, err = kto("check-series", EX / "kasan-vmalloc.mbox", "--run", "examples",
                       "--results", tmp_path)
    assert rc == 1, out + err
    [summary] = tmp_path.glob("*/check-series.json")
    data = json.loads(summary.read_text())["arches"]["x86_64"]
    # Patch 4/8 reads pages[count]: KASAN reports it, and the value read (a redzone
    # zero) trips the patch's own WARN_ON_ONCE.
    assert data["new"] == ["KASAN: slab-out-of-bounds Read in vm_map_ram",
                           "WARNING in vm_map_ram"], data
    assert data["fixed"] == [] and data["base"]["titles"] == []
    # Suspects before any bisect: the patches whose hunks change a function of the stack
    # (vm_map_ram: 3/8, 4/8, 8/8; vm_map_ram_test: 7/8), not the others.
    suspects = data["suspects"]["KASAN: slab-out-of-bounds Read in vm_map_ram"]
    assert [s.split('"')[0].strip() for s in suspects] == \
        ["patch 3/8", "patch 4/8", "patch 7/8", "patch 8/8"], suspects
    assert "NEW          KASAN: slab-out-of-bounds Read in vm_map_ram" in out


def _bisect(tmp_path, series, *extra):
    rc, out, err = kto("bisect", EX / series, "--run", "examples", "--results", tmp_path,
                       *extra)
    [result] = tmp_path.glob("*/bisect.json")
    return rc, out, err, json.loads(result.read_text())


def test_bisect_kasan_series_blames_patch_4(tmp_path):
    rc, out, err, data = _bisect(tmp_path, "kasan-vmalloc.mbox")
    assert rc == 1, out + err
    v = data["verdict"]
    assert v["status"] == "found" and v["first_bad"] == [4], out
    assert 'culprit: patch 4/8 "mm/vmalloc: sanity-check the pages passed to vm_map_ram()" ' \
           "by Bo Maintainer <bo@example.org>" in out
    assert data["reports"][0]["title"] in ("KASAN: slab-out-of-bounds Read in vm_map_ram",
                                           "WARNING in vm_map_ram")
    # The symbolized stack and the culprit's hunk that touches it are shown.
    assert any(f.startswith("vm_map_ram") and "mm/vmalloc.c:" in f
               for f in data["reports"][0]["stack"])
    assert "+\tfor (i = 0; i <= count; i++)" in out
    assert v["confidence"] > 0.8 and "confidence" in v["summary"]
    # Binary search: far fewer test runs than testing all 9 steps with repeats.
    assert data["builds"] <= 5 and len(data["steps"]) < 18
    assert data["reproducer"].startswith("kto bisect ")


def test_bisect_lockdep_series_blames_patch_2(tmp_path):
    rc, out, err, data = _bisect(tmp_path, "lockdep-vmalloc.mbox")
    assert rc == 1, out + err
    assert data["verdict"]["status"] == "found" and data["verdict"]["first_bad"] == [2], out
    assert data["reports"][0]["title"].startswith("possible deadlock in vm_")


def _workloads(data, hit):
    return [w for s in data["steps"] if s["hit"] == hit for w in s["workloads"]]


def test_bisect_oops_series_ends_each_crashed_run_in_seconds(tmp_path):
    # 3/4 writes one byte past a vm_map_ram() mapping: KASAN reports it, then the write
    # faults and test_vmalloc's kthread oopses; insmod would never return (900 s timeout).
    rc, out, err, data = _bisect(tmp_path, "vmalloc-oops.mbox")
    assert rc == 1, out + err
    v = data["verdict"]
    assert v["status"] == "found" and v["first_bad"] == [3], out
    titles = {t for s in data["steps"] if s["hit"] for t in s["titles"]}
    assert "KASAN: vmalloc-out-of-bounds Write in vm_map_ram_test" in titles, titles
    assert any(t.startswith("BUG: unable to handle") and t.endswith("in vm_map_ram_test")
               for t in titles), titles
    # Every run with the oops ended as a crash (or, once the predicate was known, at the
    # matching report), within seconds of it, never at the workload timeout.
    hits = _workloads(data, True)
    assert hits and all(w["status"] in ("crash", "stopped") for w in hits), hits
    assert any(w["status"] == "crash" and "kernel crashed: " in w["reason"] for w in hits)
    assert all(w["seconds"] < 120 for w in hits), hits
    # The base ran once: 2/4 being good proves it good too.
    assert [s["step"] for s in data["steps"]].count(0) == 1, data["steps"]
    # Boots and workloads of the whole bisect: minutes (builds and lock waits on a shared
    # machine excluded; before, each crashed run alone took 15 minutes).
    guest = sum((s["boot_seconds"] or 0) + sum(w["seconds"] for w in s["workloads"])
                for s in data["steps"])
    assert guest < 8 * 60, data["steps"]


def test_bisect_lockdep_chain_finds_the_culprit_hunk_in_a_chain_stack(tmp_path):
    # The cycle closes in vm_unmap_ram (1/3's code: the main stack); the culprit 3/3
    # changed vm_map_ram, which is only in the report's "-> #1" dependency chain entry.
    rc, out, err, data = _bisect(tmp_path, "lockdep-chain.mbox")
    assert rc == 1, out + err
    assert data["verdict"]["status"] == "found" and data["verdict"]["first_bad"] == [3], out
    rep = data["reports"][0]
    assert rep["title"] == "possible deadlock in vm_unmap_ram", rep["title"]
    hunk = data["culprit_hunk"]
    assert hunk["functions"] == ["vm_map_ram"], hunk
    assert [s for s in hunk["stacks"] if s.startswith("lockdep chain -> #1")] == \
        hunk["stacks"][:1] and "main stack" not in hunk["stacks"], hunk
    assert "+\tmutex_lock(&vm_ram_stats_lock);" in hunk["hunk"]
    assert "in the lockdep chain -> #1 (" in out
    # The base ran once: 2/3 being good proves it good too.
    assert [s["step"] for s in data["steps"]].count(0) == 1, data["steps"]


def test_bisect_step_stops_at_the_matching_report(tmp_path):
    # examples-long: a clean vm_map_ram loop takes about a minute; with --title the
    # predicate is known from the first run, and a step that prints the lockdep report
    # (in the loop's first iteration) is stopped within seconds. Three runs: the tip
    # twice (the rate), the base once; then the run cap ends the bisect.
    rc, out, err = kto("bisect", EX / "lockdep-chain.mbox", "--run", "examples-long",
                       "--title", "possible deadlock", "--max-runs", "3",
                       "--results", tmp_path)
    [result] = tmp_path.glob("*/bisect.json")
    data = json.loads(result.read_text())
    assert [(s["step"], s["hit"]) for s in data["steps"]] == [(3, True), (3, True), (0, False)]
    hits = [w for s in data["steps"] if s["hit"] for w in s["workloads"]]
    [clean] = data["steps"][2]["workloads"]
    assert all(w["status"] == "stopped" and "matching the bisect predicate" in w["reason"]
               for w in hits), hits
    assert clean["status"] == "pass" and all(w["seconds"] * 3 < clean["seconds"]
                                             for w in hits), (hits, clean)


def test_check_series_ranks_suspects_by_the_stack_they_are_in(tmp_path):
    rc, out, err = kto("check-series", EX / "lockdep-chain.mbox", "--run", "examples",
                       "--results", tmp_path)
    assert rc == 1, out + err
    [summary] = tmp_path.glob("*/check-series.json")
    data = json.loads(summary.read_text())["arches"]["x86_64"]
    details = data["suspect_details"]["possible deadlock in vm_unmap_ram"]
    assert [d["patch"].split('"')[0].strip() for d in details] == ["patch 1/3", "patch 3/3"]
    assert "main stack" in details[0]["stacks"]
    assert details[1]["stacks"][0].startswith("lockdep chain -> #1"), details
    assert "(in the lockdep chain -> #1 (" in out
