"""known-issues.yaml against the real stock-kernel report it records: the console of kto's
mm-vmemmap run (x86_64, stock 6.12.117, hugetlb vmemmap optimisation on + DEBUG_VM; the
first on its own DEFAULT_ON kernel, the second on the debug-VM kernel booted with
hugetlb_free_vmemmap=on, where the run now lives), and how kto run's summary shows a
known report (still counted, marked)."""
import lzma
from pathlib import Path

import pytest

from orchestrator import config, known_issues, pipeline, results
from orchestrator.report import parse

REPO = Path(__file__).resolve().parent.parent
LOG = REPO / "tests/data/reports/x86_64-vmemmap-bad-page-console.log.xz"
TITLE = "BUG: Bad page state in hugetlb_sysctl_handler"


@pytest.fixture(scope="module")
def reports():
    return parse(lzma.open(LOG, "rt", errors="replace").read())


def test_real_vmemmap_log_gives_one_title_with_the_pool_shrink_stack(reports):
    assert len(reports) == 121                    # printed; the kernel suppressed 10230 more
    assert {r.title for r in reports} == {TITLE}
    assert all(r.type == "UNKNOWN" and not r.corrupted for r in reports)
    reasons = {ln.split("page dumped because: ")[1] for r in reports
               for ln in r.text.splitlines() if "page dumped because: " in ln}
    assert reasons == {"corrupted mapping in tail page", "nonzero mapcount",
                       "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"}
    funcs = [f.func for f in reports[0].frames]
    for f in ("free_tail_page_prepare", "update_and_free_pages_bulk", "set_max_huge_pages",
              "hugetlb_sysctl_handler"):
        assert f in funcs, funcs


def test_repo_known_issues_cover_it_only_where_it_was_seen(reports):
    known = known_issues.load(REPO / "known-issues.yaml")
    k = known_issues.match(known, reports[0].title, "x86_64", "mm-vmemmap")
    assert k is not None and "vmemmap" in k.reason and LOG.name in k.reason
    # Not hidden anywhere else: another run, another arch, another bad-page title.
    assert known_issues.match(known, TITLE, "x86_64", "matrix") is None
    assert known_issues.match(known, TITLE, "arm64", "mm-vmemmap") is None
    assert known_issues.match(known, "BUG: Bad page state in shrink_folio_list", "x86_64",
                              "mm-vmemmap") is None


def test_every_known_issue_is_pinned_by_the_real_log_it_cites():
    """Each entry's reason names its evidence, a console log under tests/data/reports/;
    that log must hold a report whose title the entry matches (and the arch it names is
    one the entry allows). An entry without a log is a defect."""
    import re
    known = known_issues.load(REPO / "known-issues.yaml")
    assert known
    for k in known:
        logs = re.findall(r"tests/data/reports/(\S+?\.log(?:\.xz)?)\b", k.reason)
        assert logs, f"{k.where}: no evidence log named in the reason"
        for name in logs:                        # every log it cites holds the report
            path = REPO / "tests/data/reports" / name
            opener = lzma.open if path.suffix == ".xz" else open
            with opener(path, "rt", errors="replace") as fh:
                titles = {r.title for r in parse(fh.read())}
            assert any(re.search(k.title, t) for t in titles), (k.where, name, sorted(titles))
            arch = path.name.split("-")[0]
            assert not k.arches or arch in k.arches, (k.where, arch)


def _job(titles: list[str]) -> results.JobResult:
    j = results.JobResult(arch="x86_64", outcome="ok")
    j.reports = [results.ReportEntry(t, "UNKNOWN", None, False, "hugetlb", False,
                                     f"x86_64/reports/{i:03d}.txt", t)
                 for i, t in enumerate(titles, 1)]
    return j


def test_summary_groups_titles_and_marks_known_ones(tmp_path):
    r = results.RunResult(run="mm-vmemmap", directory=tmp_path)
    r.jobs = [_job([TITLE] * 3 + ["WARNING in set_max_huge_pages"])]
    known = known_issues.load(REPO / "known-issues.yaml")
    lines = results.summary_lines(r, known)
    assert "  reports: 4 unexpected" in lines
    [bad] = [ln for ln in lines if TITLE in ln]
    assert "x3  [x86_64/reports/001.txt]  [known: stock 6.12.117" in bad
    [warn] = [ln for ln in lines if "WARNING" in ln]
    assert "known" not in warn and " x" not in warn
    # the same report in another run is not known
    r.run = "matrix"
    assert not any("[known:" in ln for ln in results.summary_lines(r, known))
    assert r.exit_code() == 1          # a known report is still a report of this run


@pytest.mark.vmemmap
def test_stock_kernel_report_is_reproduced_and_known(tmp_path):
    """The real thing: stock 6.12's debug-VM kernel booted with the vmemmap optimisation on
    (the same kernel as race's x86_64.debug-vm job: no kernel of its own) prints the
    report when the hugetlb workload gives its pool back; kto finds it, titles it, and the
    repo's known-issues.yaml marks it. The workload's own tests still pass."""
    cfg = config.load(REPO / "runs.yaml")["mm-vmemmap"]
    cfg.presets = {"hugetlb": "quick"}
    [job] = pipeline.run(cfg, tmp_path).jobs
    assert job.outcome == "ok", job.error
    [wl] = job.workloads
    assert wl.status == "pass", [(t.name, t.status, t.detail) for t in wl.tests]
    # One title: the pool-shrink path, named by the sysctl handler or (NUMA kernels, where
    # it is not inlined) its _common helper.
    assert job.reports and len({r.title for r in job.reports}) == 1
    assert job.reports[0].title.startswith(TITLE), job.reports[0].title
    known = known_issues.load(REPO / "known-issues.yaml")
    assert all(known_issues.match(known, r.title, job.arch, cfg.name) for r in job.reports)
    r = results.RunResult(run=cfg.name, directory=tmp_path, jobs=[job])
    assert any("[known: stock 6.12.117" in ln for ln in results.summary_lines(r, known))


def test_pipeline_keeps_one_entry_per_title_and_workload_with_its_count(tmp_path):
    """The real log's 121 prints of one report become one summary entry (count 121) and
    one report file, as syzbot keeps one report per title."""
    from orchestrator.workload import WorkloadResult
    log = tmp_path / "console.log"
    text = lzma.open(LOG, "rt", errors="replace").read()
    log.write_text(text)
    job = results.JobResult(arch="x86_64")
    # A workload running for the first half of the log: its reports count apart.
    half = len(text.splitlines()) // 2
    job.workloads.append(WorkloadResult("hugetlb", "pass", [], 1.0, console_span=(0, half)))
    pipeline._collect_reports(job, tmp_path, log, tmp_path / "no-build")
    assert [r.title for r in job.reports] == [TITLE, TITLE]
    assert [r.workload for r in job.reports] == ["hugetlb", None]
    assert sum(r.count for r in job.reports) == 121 and all(r.count > 1 for r in job.reports)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "001-BUG-Bad-page-state-in-hugetlb-sysctl-handler.txt",
        "002-BUG-Bad-page-state-in-hugetlb-sysctl-handler.txt"]
    lines = results.summary_lines(results.RunResult("mm-vmemmap", tmp_path, jobs=[job]))
    assert f"    {TITLE}  x121  [{tmp_path.name}/reports/001-" in "\n".join(lines)
