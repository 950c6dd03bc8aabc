"""KCIDB v5 JSON (schema 5.3 of the kcidb-io package; tests validate against it).

- one checkout per (base commit, series) tested: git_commit_hash is the source commit,
  the series' patches and the commit after ``git am`` are in ``misc``;
- one build per job (architecture, config_name = the kconfig variant or ``default``);
- tests per build: ``boot``, one per workload (``vmalloc``) and one per workload test
  (``vmalloc.fix_size_alloc_test``); pass/xfail -> PASS, fail -> FAIL, skip -> SKIP,
  timeout/error -> ERROR;
- one issue per distinct unexpected report title, with an id derived from the title only,
  so the same bug is the same KCIDB issue every night; one incident per report occurrence
  linked to the build and to the workload test running when it was printed (``boot``
  otherwise). Reports a workload provokes on purpose (kasan-kunit) are not issues.

Object ids are ``kto:<run>-<start time>:<job id>[...]``: unique per run, and the same
whether a job's results come from its shard's directory or from the merged one.
"""
from __future__ import annotations

import hashlib
import json
import re

from orchestrator.formats import clean_text

ORIGIN = "kto"
SCHEMA = {"major": 5, "minor": 3}
_STATUS = {"pass": "PASS", "xfail": "PASS", "fail": "FAIL", "skip": "SKIP",
           "timeout": "ERROR", "error": "ERROR", "crash": "FAIL", "stopped": "DONE"}
_EXCERPT = 16384


def _path_part(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_") or "test"


def _ts(text: str) -> str | None:
    return text if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                                text or "") else None


def issue_id(title: str) -> str:
    return f"{ORIGIN}:{hashlib.sha256(title.encode()).hexdigest()[:20]}"


def build(result) -> dict:
    run_key = _path_part(f"{result.run}-{result.started}")
    started = _ts(result.started)
    data = {"version": dict(SCHEMA), "checkouts": [], "builds": [], "tests": [],
            "issues": [], "incidents": []}
    checkouts: dict[tuple, str] = {}
    issues: dict[str, dict] = {}
    for job in result.jobs:
        key = (job.source_commit, tuple(job.patches))
        if key not in checkouts:
            cid = f"{ORIGIN}:{run_key}:checkout-{len(checkouts) + 1}"
            checkouts[key] = cid
            co = {"id": cid, "origin": ORIGIN, "comment": clean_text(result.source),
                  "valid": bool(job.commit) or not job.patches,
                  "misc": {"run": result.run, "series": job.series,
                           "patches": list(job.patches), "patched_commit": job.commit}}
            if re.fullmatch(r"[0-9a-f]{40}", job.source_commit or ""):
                co["git_commit_hash"] = job.source_commit
            if started:
                co["start_time"] = started
            data["checkouts"].append(co)
        bid = f"{ORIGIN}:{run_key}:{job.id}"
        b = job.build or {}
        status = ("PASS" if b.get("status") in ("ok", "cached") else
                  "FAIL" if b.get("status") == "failed" or job.outcome == "build-failed"
                  else "MISS")
        bo = {"id": bid, "checkout_id": checkouts[key], "origin": ORIGIN,
              "architecture": _path_part(job.arch).lower(),
              "config_name": job.variant or "default", "status": status,
              "misc": {"job": job.id, "outcome": job.outcome, "build_key": b.get("key", ""),
                       "kernel_release": job.kernel_release, "reproducer": job.reproducer}}
        if b.get("seconds") is not None and b:
            bo["duration"] = float(b.get("seconds") or 0)
        if b.get("reproducer"):
            bo["command"] = clean_text(b["reproducer"])
        err = b.get("error") or (job.error if job.outcome != "ok" else "")
        if err:
            bo["log_excerpt"] = clean_text(err)[:_EXCERPT]
        if started:
            bo["start_time"] = started
        data["builds"].append(bo)
        if not b or status != "PASS":
            continue

        def test(path, status, **extra):
            t = {"id": f"{bid}:{path}", "build_id": bid, "origin": ORIGIN, "path": path,
                 "status": status, **extra}
            if started:
                t["start_time"] = started
            data["tests"].append(t)
            return t["id"]

        boot = job.boot or {}
        boot_id = test("boot", "PASS" if boot.get("outcome") == "ready" else
                       "FAIL" if boot else "MISS",
                       **({"duration": float(boot["seconds"])} if boot.get("seconds") else {}),
                       **({"log_excerpt": clean_text(boot["detail"])[:_EXCERPT]}
                          if boot.get("detail") else {}),
                       environment={"comment": f"QEMU {job.arch} ({boot.get('accel', '?')})"})
        wl_ids = {}
        for w in job.workloads:
            wpath = _path_part(w.workload)
            wl_ids[w.workload] = test(wpath, _STATUS.get(w.status, "ERROR"),
                                      duration=float(w.seconds or 0),
                                      **({"comment": clean_text(w.reason)} if w.reason else {}),
                                      misc={"counts": w.counts()})
            for t in w.tests:
                test(f"{wpath}.{_path_part(t.name)}", _STATUS.get(t.status, "ERROR"),
                     comment=clean_text(t.detail) if t.detail else t.name,
                     misc={"name": t.name, "kto_status": t.status})
        for n, r in enumerate(job.unexpected_reports(), 1):
            iid = issue_id(r.title)
            if iid not in issues:
                issues[iid] = {"id": iid, "version": 1, "origin": ORIGIN,
                               "report_subject": clean_text(r.title),
                               "culprit": {"code": True},
                               "comment": clean_text(r.type),
                               "misc": {"type": r.type, "frame": r.frame}}
            data["incidents"].append({
                "id": f"{bid}:report-{n}", "origin": ORIGIN, "issue_id": iid,
                "issue_version": 1, "build_id": bid,
                "test_id": wl_ids.get(r.workload, boot_id), "present": True,
                "comment": clean_text(r.first_line),
                "misc": {"file": r.file, "corrupted": r.corrupted, "stack": r.stack[:64]}})
    data["issues"] = list(issues.values())
    return data


def render(result) -> str:
    return json.dumps(build(result), indent=1) + "\n"
