"""JUnit XML: one <testsuite> per job, one <testcase> per workload test.

- build and boot are testcases of their own: a failed build or boot is an <error>
  (infrastructure or kernel that could not be tested), as is a job-level infra error;
- workload tests: fail -> <failure>, timeout/error -> <error>, skip -> <skipped> with the
  reason, xfail -> passed (an expected failure, said in system-out);
- every unexpected kernel report is a testcase that fails with the report title as the
  message (classname ``JOB.reports.WORKLOAD``, or ``.boot`` when no workload was running);
  a job without unexpected reports has one passing ``no unexpected kernel reports`` case.
  Reports a workload provokes on purpose (kasan-kunit) are counted in the suite's
  properties, not listed as testcases. A report's failure text is the report itself (the
  console excerpt of its report file), then its symbolized stack.

Valid against Jenkins' junit-10.xsd (tests/data/junit/junit-10.xsd): no ``skipped`` on
<testsuites> (only on each <testsuite>). Times: build, boot, tests that have one (the
workload parsers give none yet), each workload's wall time as a suite property
``WORKLOAD.seconds``; a suite's time is the job's build + boot + workloads.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.formats import clean_text, report_excerpt


def _case(suite, classname: str, name: str, seconds: float | None = None):
    tc = ET.SubElement(suite, "testcase", classname=clean_text(classname),
                       name=clean_text(name))
    if seconds is not None:
        tc.set("time", f"{float(seconds or 0):.3f}")
    return tc


def _add(tc, tag: str, message: str, text: str = "", type_: str | None = None):
    el = ET.SubElement(tc, tag, message=clean_text(message.splitlines()[0] if message else ""))
    if type_:
        el.set("type", type_)
    if text:
        el.text = clean_text(text)
    return el


def render(result) -> str:
    root = ET.Element("testsuites", name=f"kto {result.run}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for job in result.jobs:
        suite = ET.SubElement(root, "testsuite", name=job.id, timestamp=result.started)
        props = ET.SubElement(suite, "properties")
        for k, v in (("arch", job.arch), ("variant", job.variant), ("series", job.series),
                     ("outcome", job.outcome), ("commit", job.commit),
                     ("kernel_release", job.kernel_release),
                     ("expected_reports", str(len(job.reports) - len(job.unexpected_reports()))),
                     ("reproducer", job.reproducer)):
            if v:
                ET.SubElement(props, "property", name=k, value=clean_text(v))
        for w in job.workloads:
            ET.SubElement(props, "property", name=f"{w.workload}.seconds",
                          value=f"{float(w.seconds or 0):.1f}")
        cid = job.id
        b = job.build or {}
        if b:
            tc = _case(suite, cid, "build", b.get("seconds"))
            if job.outcome == "build-failed" or b.get("status") not in ("ok", "cached"):
                _add(tc, "error", f"build failed: {b.get('error') or job.error}",
                     (b.get("error") or job.error or "") + "\n" + (b.get("reproducer") or ""),
                     "build-failed")
        if job.outcome == "infra-error" or job.outcome == "interrupted":
            tc = _case(suite, cid, "setup" if not b else "job")
            _add(tc, "error", job.error or job.outcome, job.error, job.outcome)
        if job.boot:
            tc = _case(suite, cid, "boot", job.boot.get("seconds"))
            if job.outcome == "boot-failed" or job.boot.get("outcome") not in ("ready",):
                _add(tc, "error", f"boot {job.boot.get('outcome')}: "
                     f"{job.boot.get('detail') or job.error}", job.error, "boot-failed")
        for w in job.workloads:
            cls = f"{cid}.{w.workload}"
            if not w.tests:
                tc = _case(suite, cls, w.workload, w.seconds)
                if w.status in ("skip", "stopped"):
                    _add(tc, "skipped", w.reason or "skipped")
                elif w.status in ("timeout", "error"):
                    _add(tc, "error", f"{w.status}: {w.reason}", w.output, w.status)
                elif w.status in ("fail", "crash"):
                    _add(tc, "failure", w.reason or "failed", w.output, w.status)
                continue
            for t in w.tests:
                tc = _case(suite, cls, t.name, getattr(t, "seconds", None))
                if t.status == "fail":
                    _add(tc, "failure", t.detail or "failed", t.detail, "fail")
                elif t.status in ("timeout", "error"):
                    _add(tc, "error", f"{t.status}: {t.detail}", t.detail, t.status)
                elif t.status == "skip":
                    _add(tc, "skipped", t.detail or w.reason or "skipped")
                elif t.status == "xfail":
                    ET.SubElement(tc, "system-out").text = clean_text(
                        f"expected failure: {t.detail}")
            if w.status in ("timeout", "error", "crash") and \
                    all(t.status not in ("timeout", "error") for t in w.tests):
                tc = _case(suite, cls, f"{w.workload} (workload)", w.seconds)
                _add(tc, "error", f"{w.status}: {w.reason}", w.reason, w.status)

        unexpected = job.unexpected_reports()
        for r in unexpected:
            tc = _case(suite, f"{cid}.reports.{r.workload or 'boot'}", r.title)
            text = report_excerpt(result.directory, r.file) or r.first_line
            body = "\n".join([text, "", *r.stack, "", f"report file: {r.file}"])
            _add(tc, "failure", r.title, body, r.type)
        if job.outcome == "ok" and not unexpected:
            _case(suite, f"{cid}.reports", "no unexpected kernel reports")
        counts = {"tests": len(suite.findall("testcase")),
                  "failures": len(suite.findall("testcase/failure")),
                  "errors": len(suite.findall("testcase/error")),
                  "skipped": len(suite.findall("testcase/skipped"))}
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        seconds = float(b.get("seconds") or 0) + float((job.boot or {}).get("seconds") or 0) \
            + sum(float(w.seconds or 0) for w in job.workloads)
        suite.set("time", f"{seconds:.3f}")
        totals["time"] += seconds
    for k in ("tests", "failures", "errors"):      # junit-10.xsd: no skipped here
        root.set(k, str(totals[k]))
    root.set("time", f"{totals['time']:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
