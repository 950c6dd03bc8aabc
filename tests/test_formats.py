"""junit.xml, kcidb.json and index.html from real kto results (tests/data/runs: a clean
arm64 matrix-quick run, the arm64 selftest run with its lockdep report and 163 KASAN
reports provoked by kasan-kunit, and a run that ended in a kconfig infra error)."""
import copy
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from kcidb_io.schema import V5_3

from orchestrator import results
from orchestrator.formats import html, junit, kcidb
from orchestrator import workload

RUNS = Path(__file__).parent / "data" / "runs"
LOCKDEP = "possible deadlock in kto_abba_selftest"


@pytest.fixture
def run(tmp_path):
    def load(name):
        shutil.copytree(RUNS / name, tmp_path / name)
        return results.load(tmp_path / name)
    return load


def cases(xml_text):
    root = ET.fromstring(xml_text)
    return root, root.findall(".//testcase")


def test_load_roundtrip_keeps_summary_compatible(run):
    r = run("selftest-arm64")
    before = json.loads((r.directory / "summary.json").read_text())
    r.write()
    after = json.loads((r.directory / "summary.json").read_text())
    before.pop("directory"), after.pop("directory")
    for j in after["jobs"]:                 # the added fields, with their defaults
        assert (j.pop("job_id"), j.pop("variant"), j.pop("series"), j.pop("phases")) == (
            "", "", "", {})
        for rep in j["reports"]:
            assert rep.pop("stacks") == {}
    assert (after.pop("shard"), after.pop("merged_from")) == ("", [])
    assert after == before
    for name in ("junit.xml", "kcidb.json", "index.html"):
        assert (r.directory / name).stat().st_size > 500, name


def test_junit_clean_run(run):
    r = run("matrix-quick-arm64")
    root, tcs = cases(junit.render(r))
    n_tests = sum(len(w.tests) for w in r.jobs[0].workloads)
    assert len(tcs) == n_tests + 3            # + build, boot, "no unexpected kernel reports"
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert root.get("tests") == str(len(tcs))
    xfail = [t for t in tcs if t.get("name") == "align_shift_alloc_test"]
    assert xfail and xfail[0].find("system-out").text.startswith("expected failure")
    assert {t.get("classname") for t in tcs} >= {"arm64", "arm64.vmalloc", "arm64.hugetlb",
                                                 "arm64.userfaultfd", "arm64.reports"}


def test_junit_report_is_a_failure_titled_by_the_report(run):
    r = run("selftest-arm64")
    root, tcs = cases(junit.render(r))
    failed = [t for t in tcs if t.find("failure") is not None]
    assert [t.find("failure").get("message") for t in failed] == [LOCKDEP]
    assert failed[0].get("classname") == "arm64.reports.boot"
    assert "kto_abba_selftest+0x5c/0x7c (mm/vmalloc.c:5341)" in failed[0].find("failure").text
    assert root.get("failures") == "1" and root.get("errors") == "0"
    # 163 KASAN reports provoked by kasan-kunit are counted, not failures
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["expected_reports"] == "163"


def test_junit_infra_build_boot_errors_and_test_statuses(run):
    root, tcs = cases(junit.render(run("mm-vmemmap-x86_64")))
    assert root.get("errors") == "1"
    err = tcs[0].find("error")
    assert err.get("type") == "infra-error" and "did not survive olddefconfig" in err.get("message")

    r = run("matrix-quick-arm64")
    job = r.jobs[0]
    bad = copy.deepcopy(job)
    bad.job_id = "arm64.kfence"
    w = bad.workloads[1]
    w.tests = [workload.TestResult("t-fail", "fail", "exit 1"), workload.TestResult("t-to", "timeout", "600s"),
               workload.TestResult("t-skip", "skip", "no 1G pages")]
    failed_build = copy.deepcopy(job)
    failed_build.job_id, failed_build.outcome = "arm64+bad", "build-failed"
    failed_build.build = {"status": "failed", "seconds": 3.0, "error": "mm/x.c:1: error: boom"}
    failed_build.boot, failed_build.workloads = {}, []
    no_boot = copy.deepcopy(job)
    no_boot.job_id, no_boot.outcome = "arm64+panic", "boot-failed"
    no_boot.boot = {"outcome": "panic", "seconds": 4.0, "detail": "Kernel panic"}
    no_boot.workloads = []
    r.jobs += [bad, failed_build, no_boot]
    root, tcs = cases(junit.render(r))
    by = {(t.get("classname"), t.get("name")): t for t in tcs}
    assert by[("arm64.kfence.hugetlb", "t-fail")].find("failure").get("message") == "exit 1"
    assert by[("arm64.kfence.hugetlb", "t-to")].find("error").get("type") == "timeout"
    assert by[("arm64.kfence.hugetlb", "t-skip")].find("skipped").get("message") == "no 1G pages"
    assert by[("arm64+bad", "build")].find("error").get("message") == \
        "build failed: mm/x.c:1: error: boom"
    assert by[("arm64+panic", "boot")].find("error").get("type") == "boot-failed"
    assert ("arm64+bad.reports", "no unexpected kernel reports") not in by
    assert root.get("failures") == "1" and root.get("errors") == "3"


def validate(data):
    V5_3.validate_exactly(data)
    return data


def test_kcidb_valid_for_every_fixture(run):
    for name in ("matrix-quick-arm64", "matrix-quick-riscv64", "selftest-arm64",
                 "mm-vmemmap-x86_64"):
        r = run(name)
        validate(kcidb.build(r))
        r.write()
        validate(json.loads((r.directory / "kcidb.json").read_text()))


def test_kcidb_validation_can_fail(run):
    data = kcidb.build(run("selftest-arm64"))
    broken = copy.deepcopy(data)
    broken["tests"][0]["status"] = "OK"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = copy.deepcopy(data)
    broken["builds"][0]["id"] = "no-origin-prefix"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_kcidb_content(run):
    r = run("selftest-arm64")
    data = validate(kcidb.build(r))
    assert data["version"] == {"major": 5, "minor": 3}
    (co,) = data["checkouts"]
    assert co["git_commit_hash"] == r.jobs[0].source_commit and len(co["misc"]["patches"]) == 2
    (b,) = data["builds"]
    assert (b["architecture"], b["status"], b["checkout_id"]) == ("arm64", "PASS", co["id"])
    tests = {t["path"]: t for t in data["tests"]}
    assert tests["boot"]["status"] == "PASS"
    assert tests["vmalloc"]["status"] == "PASS"
    assert tests["vmalloc.align_shift_alloc_test"]["status"] == "PASS"     # xfail
    assert tests["vmalloc.align_shift_alloc_test"]["misc"]["kto_status"] == "xfail"
    assert any(t["status"] == "SKIP" for t in data["tests"])
    (issue,) = data["issues"]                # the 163 expected KASAN reports are not issues
    assert issue["report_subject"] == LOCKDEP and issue["id"] == kcidb.issue_id(LOCKDEP)
    (inc,) = data["incidents"]
    assert inc["issue_id"] == issue["id"] and inc["test_id"] == tests["boot"]["id"]
    assert inc["build_id"] == b["id"] and inc["present"] is True
    # the same title is the same issue in another run (another directory, other arch)
    assert kcidb.issue_id(LOCKDEP) == issue["id"] != kcidb.issue_id(LOCKDEP + " ")


def test_kcidb_failed_build_and_infra(run):
    data = validate(kcidb.build(run("mm-vmemmap-x86_64")))
    assert data["builds"][0]["status"] == "MISS" and not data["tests"]
    assert "olddefconfig" in data["builds"][0]["log_excerpt"]
    r = run("matrix-quick-riscv64")
    r.jobs[0].outcome = "build-failed"
    r.jobs[0].build = {"status": "failed", "seconds": 1.0, "error": "error: boom"}
    data = validate(kcidb.build(r))
    assert data["builds"][0]["status"] == "FAIL" and not data["tests"]


def test_html_has_matrix_and_reports(run):
    r = run("selftest-arm64")
    page = html.render(r)
    assert "kto run selftest: FAILED" in page
    assert page.count('<div class="report">') == 1              # unexpected only
    assert LOCKDEP in page and "LOCKDEP" in page
    assert "kto_abba_selftest+0x5c/0x7c (mm/vmalloc.c:5341)" in page      # symbolized stack
    assert "WARNING: possible circular locking dependency detected" in page   # excerpt
    assert "163 expected report(s)" in page
    clean = html.render(run("matrix-quick-arm64"))
    assert "kto run matrix-quick: CLEAN" in clean and "No kernel reports." in clean
    assert "INFRASTRUCTURE ERROR" in html.render(run("mm-vmemmap-x86_64"))


def test_html_escapes_and_missing_report_file(run):
    r = run("selftest-arm64")
    rep = copy.deepcopy(r.jobs[0].reports[0])
    rep.title, rep.file = "KASAN: <script>alert(1)</script> in x", "arm64/reports/gone.txt"
    r.jobs[0].reports.append(rep)
    page = html.render(r)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "(report file not in this results directory)" in page
