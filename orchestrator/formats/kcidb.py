"""KCIDB v5 JSON (schema 5.3 of the kcidb-io package: render() validates with it and
refuses to write an invalid file).

- one checkout per (base commit, series) tested: git_commit_hash is the source commit,
  ``patchset_hash`` KCIDB's hash of the series' patches when the job recorded it, the
  series' patch labels and the commit after ``git am`` in ``misc``;
- one build per job (architecture, config_name = the kconfig variant or ``default``);
- the build's compiler (from the job's build-metadata.json) and, with a log base URL,
  ``log_url`` of its build log;
- tests per build: ``boot``, one per workload and one per workload test, at paths of
  KCIDB's catalog where there is one: mm selftests are ``kselftest.mm.<program>``, the
  KASAN KUnit suite ``kunit.kasan.<case>``, test_vmalloc ``vmalloc.<case>``; pass/xfail
  -> PASS, fail -> FAIL, skip -> SKIP, timeout/error -> ERROR; with a log base URL, the
  boot test links the console log and workload tests their output;
- one issue per distinct unexpected report title, with an id derived from the title only,
  so the same bug is the same KCIDB issue every night; one incident per report occurrence
  linked to the build and to the workload test running when it was printed (``boot``
  otherwise). Reports a workload provokes on purpose (kasan-kunit) are not issues.

Object ids are ``ORIGIN:<run>-<job start>:<job id>[...]`` (the job's start is its shard's
start, kept by kto merge): unique per night, and the same in a shard's file and the merged
one. Checkout ids are a digest of what was checked out (run, base commit, patched commit,
patches), not a position.

Configuration (environment, so kto run, merge and nightly all honour it; kto merge also
takes options): ``KTO_KCIDB_ORIGIN`` (default ``kto``; KCIDB origin names are
``[a-z0-9_]+``) and ``KTO_LOG_BASE_URL``: the URL the results directory is published at
(e.g. a CI job's artifact URL); log URLs are it + the file's path in the directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

from orchestrator.errors import KtoError
from orchestrator.formats import clean_text

ORIGIN = "kto"
# workload -> KCIDB catalog prefix (kcidb's tests catalog: kselftest.<collection>.<test>,
# kunit.<suite>.<case>); others keep the workload's name
CATALOG = {"hugetlb": "kselftest.mm", "userfaultfd": "kselftest.mm",
           "kasan-kunit": "kunit.kasan"}
SCHEMA = {"major": 5, "minor": 3}
_STATUS = {"pass": "PASS", "xfail": "PASS", "fail": "FAIL", "skip": "SKIP",
           "timeout": "ERROR", "error": "ERROR", "crash": "FAIL", "stopped": "DONE"}
_EXCERPT = 16384


def _path_part(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_") or "test"


def _ts(text: str) -> str | None:
    return text if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                                text or "") else None


def origin() -> str:
    o = os.environ.get("KTO_KCIDB_ORIGIN", ORIGIN)
    if not re.fullmatch(r"[a-z0-9_]+", o):
        raise KtoError(f"KTO_KCIDB_ORIGIN={o!r}: a KCIDB origin is lower-case letters, "
                       "digits and _")
    return o


def log_url(rel: str) -> dict:
    base = os.environ.get("KTO_LOG_BASE_URL", "")
    if not base or not rel:
        return {}
    return {"log_url": base.rstrip("/") + "/" + "/".join(
        __import__("urllib.parse").parse.quote(p) for p in rel.split("/"))}


def patchset_hash(patches: list[bytes]) -> str:
    """KCIDB's patchset_hash: sha256 over the newline-terminated sha256 hex digests of
    each patch, in order of application ("" without patches)."""
    if not patches:
        return ""
    return hashlib.sha256("".join(hashlib.sha256(p).hexdigest() + "\n"
                                  for p in patches).encode()).hexdigest()


def issue_id(title: str) -> str:
    return f"{origin()}:{hashlib.sha256(title.encode()).hexdigest()[:20]}"


def _compiler(result, job) -> str:
    from orchestrator.results import inside
    p = inside(result.directory, f"{job.id}/build-metadata.json")
    try:
        return str(json.loads(p.read_text()).get("compiler") or "") if p else ""
    except (OSError, ValueError, AttributeError):
        return ""


def build(result) -> dict:
    ORIGIN = origin()
    data = {"version": dict(SCHEMA), "checkouts": [], "builds": [], "tests": [],
            "issues": [], "incidents": []}
    checkouts: dict[tuple, str] = {}
    issues: dict[str, dict] = {}
    for job in result.jobs:
        key = (job.source_commit, tuple(job.patches))
        started = _ts(job.started or result.started)
        if key not in checkouts:
            digest = hashlib.sha256(json.dumps([result.run, job.source_commit, job.commit,
                                                job.patches]).encode()).hexdigest()[:20]
            cid = f"{ORIGIN}:checkout-{digest}"
            checkouts[key] = cid
            co = {"id": cid, "origin": ORIGIN, "comment": clean_text(result.source),
                  "valid": bool(job.commit) or not job.patches,
                  "misc": {"run": result.run, "series": job.series,
                           "patches": list(job.patches), "patched_commit": job.commit}}
            if re.fullmatch(r"[0-9a-f]{40}", job.source_commit or ""):
                co["git_commit_hash"] = job.source_commit
            if getattr(job, "patchset_hash", ""):
                co["patchset_hash"] = job.patchset_hash
            elif not job.patches:
                co["patchset_hash"] = ""
            data["checkouts"].append(co)
        bid = f"{ORIGIN}:{_path_part(result.run + '-' + (job.started or result.started))}" \
              f":{job.id}"
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
        if _compiler(result, job):
            bo["compiler"] = clean_text(_compiler(result, job))
        if b:
            bo.update(log_url(f"{job.id}/build.log"))
        err = b.get("error") or (job.error if job.outcome != "ok" else "")
        if err:
            bo["log_excerpt"] = clean_text(err)[:_EXCERPT]
        if started:
            bo["start_time"] = started
        data["builds"].append(bo)
        if not b or status != "PASS":
            continue

        def test(path, status, tid=None, **extra):
            t = {"id": f"{bid}:{tid or path}", "build_id": bid, "origin": ORIGIN,
                 "path": path, "status": status, **extra}
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
                       environment={"comment": f"QEMU {job.arch} ({boot.get('accel', '?')})"},
                       **log_url(job.console_log))
        wl_ids = {}
        for w in job.workloads:
            wname = _path_part(w.workload)
            wpath = CATALOG.get(w.workload, wname)
            out = log_url(f"{job.id}/workloads/{w.workload}.txt")
            wl_ids[w.workload] = test(wpath, _STATUS.get(w.status, "ERROR"), tid=wname,
                                      duration=float(w.seconds or 0),
                                      **({"comment": clean_text(w.reason)} if w.reason else {}),
                                      misc={"counts": w.counts(), "workload": w.workload},
                                      **out)
            for t in w.tests:
                case = _path_part(t.name)
                test(f"{wpath}.{case}", _STATUS.get(t.status, "ERROR"), tid=f"{wname}.{case}",
                     comment=clean_text(t.detail) if t.detail else t.name,
                     misc={"name": t.name, "kto_status": t.status, "workload": w.workload},
                     **out)
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


def validate(data: dict) -> None:
    """kcidb-io's own validator (V5.3); KtoError with the first problem."""
    import jsonschema
    from kcidb_io.schema import V5_3
    try:
        V5_3.validate_exactly(data)
    except jsonschema.ValidationError as e:
        raise KtoError(f"not valid KCIDB v5.3: {e.json_path}: {e.message[:200]}") from None


def render(result) -> str:
    data = build(result)
    validate(data)
    return json.dumps(data, indent=1) + "\n"
