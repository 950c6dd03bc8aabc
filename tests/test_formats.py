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


def test_load_roundtrip_keeps_summary_compatible(run, monkeypatch, tmp_path):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))   # not the data's cache root
    r = run("selftest-arm64")
    before = json.loads((r.directory / "summary.json").read_text())
    r.write()
    after = json.loads((r.directory / "summary.json").read_text())
    before.pop("directory")                 # v1: the directory is where summary.json is
    assert "directory" not in after and after.pop("version") == results.SUMMARY_VERSION
    for j in after["jobs"]:                 # the added fields, with their defaults
        assert (j.pop("job_id"), j.pop("variant"), j.pop("series"), j.pop("phases"),
                j.pop("patchset_hash"), j.pop("started")) == ("", "", "", {}, "",
                                                              after["started"])
        for rep in j["reports"]:
            assert (rep.pop("stacks"), rep.pop("count")) == ({}, 1)
    assert (after.pop("shard"), after.pop("merged_from")) == ("", [])
    assert after == before
    for name in ("junit.xml", "kcidb.json", "index.html"):
        assert (r.directory / name).stat().st_size > 500, name


def test_summary_paths_are_relative(run, monkeypatch, tmp_path):
    """Written summaries name no path of the machine: the build directory relative to the
    cache root, the reproducer with $KTO_CACHE, and they validate against the schema."""
    r = run("selftest-arm64")
    root = str(tmp_path / "cache")                     # as a fresh run records them
    monkeypatch.setenv("KTO_CACHE", root)
    b = r.jobs[0].build
    b["dir"] = b["dir"].replace("$KTO_CACHE", root)
    b["reproducer"] = b["reproducer"].replace("$KTO_CACHE", root)
    d = b["dir"]
    assert d.startswith(root + "/builds/") and root + "/trees/arm64" in b["reproducer"]
    r.write(formats=False)
    data = json.loads((r.directory / "summary.json").read_text())
    b = data["jobs"][0]["build"]
    assert b["dir"] == d[len(root) + 1:] and b["dir"].startswith("builds/arm64/")
    assert root not in b["reproducer"] and "$KTO_CACHE/trees/arm64" in b["reproducer"]
    assert root not in json.dumps(data) and str(r.directory) not in json.dumps(data)
    results.validate(data, r.directory / "summary.json")


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


JUNIT_XSD = Path(__file__).parent / "data" / "junit" / "junit-10.xsd"


@pytest.mark.parametrize("name", ["matrix-quick-arm64", "selftest-arm64", "mm-vmemmap-x86_64",
                                  "nightly-bad-night3"])
def test_junit_valid_against_jenkins_xsd(run, name):
    """Every junit.xml kto writes is valid against Jenkins' junit-10.xsd; a report's
    failure carries the report's console text; suites and build/boot cases have times."""
    import xmlschema
    schema = xmlschema.XMLSchema(JUNIT_XSD)
    r = run(name)
    text = junit.render(r)
    schema.validate(text)
    root = ET.fromstring(text)
    assert "skipped" not in root.attrib and root.get("time")
    for suite in root.findall("testsuite"):
        assert float(suite.get("time")) >= 0
        for tc in suite.findall("testcase"):
            if tc.get("name") in ("build", "boot"):
                assert tc.get("time") is not None
    for job in r.jobs:
        for rep in job.unexpected_reports()[:3]:
            (fail,) = [tc.find("failure") for tc in root.iter("testcase")
                       if tc.get("name") == rep.title and tc.get("classname", "").startswith(
                           job.id + ".reports")][:1]
            excerpt = (r.directory / rep.file).read_text().partition("\n\n")[2].strip()
            assert excerpt.splitlines()[0] in fail.text
    # the schema does reject what kto wrote before (skipped on <testsuites>)
    root.set("skipped", "0")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(ET.tostring(root, encoding="unicode"))


def test_kcidb_compiler_catalog_paths_log_urls_origin(run, monkeypatch):
    monkeypatch.setenv("KTO_LOG_BASE_URL", "https://ci.example/job/7/artifacts/raw/merged/")
    monkeypatch.setenv("KTO_KCIDB_ORIGIN", "mm_lab")
    r = run("nightly-night1")
    data = validate(kcidb.build(r))
    assert {o["origin"] for k in ("checkouts", "builds", "tests") for o in data[k]} == {"mm_lab"}
    assert all(o["id"].startswith("mm_lab:") for o in data["builds"] + data["tests"])
    b = {x["misc"]["job"]: x for x in data["builds"]}["arm64+selftest"]
    assert b["log_url"] == ("https://ci.example/job/7/artifacts/raw/merged/"
                            "arm64%2Bselftest/build.log")
    (b,) = validate(kcidb.build(run("selftest-arm64")))["builds"]   # has build-metadata.json
    assert b["compiler"] == "aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0"
    paths = {t["path"] for t in data["tests"]}
    assert "kselftest.mm" in paths and any(p.startswith("kselftest.mm.") for p in paths)
    assert any(p.startswith("vmalloc.") for p in paths) and "boot" in paths
    boot = [t for t in data["tests"] if t["path"] == "boot"][0]
    assert boot["log_url"].endswith("/console.log")
    # two workloads at the same catalog path in one build keep distinct ids
    ids = [t["id"] for t in data["tests"]]
    assert len(ids) == len(set(ids))
    monkeypatch.setenv("KTO_KCIDB_ORIGIN", "Bad-Origin")
    with pytest.raises(Exception, match="KTO_KCIDB_ORIGIN"):
        kcidb.build(r)


def test_kcidb_patchset_hash():
    # KCIDB's definition: sha256 over the newline-terminated sha256 digests of the patches
    import hashlib
    p1, p2 = b"From a\n", b"From b\n"
    want = hashlib.sha256((hashlib.sha256(p1).hexdigest() + "\n"
                           + hashlib.sha256(p2).hexdigest() + "\n").encode()).hexdigest()
    assert kcidb.patchset_hash([p1, p2]) == want and kcidb.patchset_hash([]) == ""


def test_kcidb_invalid_is_not_written(run, monkeypatch, capsys):
    r = run("selftest-arm64")
    (r.directory / "kcidb.json").unlink(missing_ok=True)
    real = kcidb.build

    def broken(result):
        data = real(result)
        data["tests"][0]["status"] = "OK"
        return data
    monkeypatch.setattr(kcidb, "build", broken)
    from orchestrator import formats
    written = formats.write_all(r)
    assert not (r.directory / "kcidb.json").exists()
    assert "not valid KCIDB v5.3: $.tests[0].status" in capsys.readouterr().err
    assert {p.name for p in written} == {"junit.xml", "index.html"}


def test_html_tests_failures_first_logs_infra_red_grouped_titles(run):
    """The failing test's name and output are on the page before any passing one; every
    log of a job is linked; an infra-error job is red and 'not checked'; a title seen on
    three arches is one block listing them."""
    import re
    r = run("matrix-quick-arm64")
    r.jobs[0].workloads[1].tests[2].status = "fail"
    r.jobs[0].workloads[1].tests[2].detail = "exit 1: hugetlb went wrong"
    bad = r.jobs[0].workloads[1].tests[2].name
    page = html.render(r)
    tests = page[page.index("<h2>Tests</h2>"):]
    first_row = re.search(r"<tr><td>arm64</td><td>(\w+)</td><td>([^<]+)</td>", tests)
    assert first_row.group(2) == bad and "exit 1: hugetlb went wrong" in tests
    assert tests.index(bad) < tests.index("passing test(s)")
    assert '<a href="arm64/workloads/hugetlb.txt">output</a>' in tests
    for href in ("arm64/console.log", "arm64/build-metadata.json",
                 "arm64/workloads/vmalloc.txt", "arm64/workloads/userfaultfd.txt"):
        assert f'<a href="{href}">' in page, href
    infra = html.render(run("mm-vmemmap-x86_64"))
    row = infra[infra.index("<h2>Matrix</h2>"):infra.index("</table>")]
    assert "0 unexpected" not in row and "not checked" in row and 'class="bad"' in row
    assert '<header class="infra">' in infra and "header.infra{background:#b3261e}" in infra
    night = html.render(run("nightly-night1"))
    assert night.count(f"<h3>{LOCKDEP}</h3>") == 1
    assert "arches <b>arm64, riscv64, x86_64</b>" in night
    assert "3 report(s)" in night


def test_job_reproducer_runs_file_relative_to_the_checkout(run, monkeypatch, tmp_path):
    r = run("selftest-arm64")
    monkeypatch.chdir(tmp_path)
    r.jobs[0].reproducer = f"kto run selftest --job arm64 --runs {tmp_path}/sub/runs.yaml"
    r.write(formats=False)
    data = json.loads((r.directory / "summary.json").read_text())
    assert data["jobs"][0]["reproducer"] == "kto run selftest --job arm64 --runs sub/runs.yaml"
    r.jobs[0].reproducer = "kto run selftest --job arm64 --runs /elsewhere/runs.yaml"
    r.write(formats=False)                 # outside the checkout: left as it is
    data = json.loads((r.directory / "summary.json").read_text())
    assert data["jobs"][0]["reproducer"].endswith("--runs /elsewhere/runs.yaml")


@pytest.mark.parametrize("status", ["crash", "stopped"])
def test_console_watcher_statuses_survive_write_and_load(run, status):
    """A workload the console watcher ended (orchestrator/crashwatch.py: a fatal report,
    or bisect's predicate seen) is written and read back: kto merge, nightly and the
    benchmarks load such summaries."""
    r = run("selftest-arm64")
    r.jobs[0].workloads[0].status = status
    r.write()
    assert results.load(r.directory).jobs[0].workloads[0].status == status


def test_html_a_crashed_workload_is_a_failing_row_first(run):
    """A workload the console watcher ended on a fatal report (status crash), its tests
    passed so far, is listed with the failures, before every passing test."""
    import re
    r = run("matrix-quick-arm64")
    w = r.jobs[0].workloads[-1]
    w.status, w.reason = "crash", "kernel crashed: BUG: KASAN: use-after-free in foo"
    tests = html.render(r)
    tests = tests[tests.index("<h2>Tests</h2>"):]
    first_row = re.search(r"<tr><td>arm64</td><td>(\w+)</td>", tests)
    assert first_row.group(1) == w.workload
    assert tests.index("kernel crashed") < tests.index("passing test(s)")
