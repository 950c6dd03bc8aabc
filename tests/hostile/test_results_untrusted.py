"""Results directories are untrusted input (CI artifacts): what kto merge and kto nightly
--from-results do with a hostile or broken summary.json (issue 15, points 2 and 4).

Each case must end in one line on stderr naming the file (and the JSON path), exit 2, no
traceback, nothing written outside --out (and no --out at all), no history row."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLEAN = REPO / "tests" / "data" / "runs" / "selftest-arm64"   # has a lockdep report file
SECRET = "kto-hostile-secret-line"


def kto(*argv, cwd):
    env = dict(os.environ, KTO_CACHE=str(Path(cwd) / "cache"))
    return subprocess.run([sys.executable, "-m", "orchestrator", *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def shard(tmp_path, edit=None, raw=None):
    """A copy of a real results directory with summary.json edited (or replaced)."""
    d = tmp_path / "in" / "r1"
    shutil.copytree(CLEAN, d)
    if raw is not None:
        (d / "summary.json").write_bytes(raw)
    elif edit:
        data = json.loads((d / "summary.json").read_text())
        edit(data, d)
        (d / "summary.json").write_text(json.dumps(data))
    return d


def both(tmp_path, d):
    """kto merge and kto nightly --from-results on d."""
    out = tmp_path / "merged"
    m = kto("merge", d, "--out", out, cwd=tmp_path)
    n = kto("nightly", "--from-results", d, "--db", tmp_path / "h.sqlite", cwd=tmp_path)
    return m, n, out


def assert_refused(tmp_path, procs, *needles):
    m, n, out = procs
    for p in (m, n):
        assert p.returncode == 2, (p.args, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
        assert p.stderr.startswith("kto: error: ") and "summary.json" in p.stderr, p.stderr
        for s in needles:
            assert s in p.stderr, (s, p.stderr)
        assert SECRET not in p.stdout + p.stderr
    assert not out.exists()
    db = tmp_path / "h.sqlite"
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


@pytest.fixture
def secret(tmp_path):
    """A file outside the results directory that must never be read into the output."""
    p = tmp_path / "secret.txt"
    p.write_text(SECRET + "\n")
    return p


def set_report(field, value):
    def edit(data, d):
        data["jobs"][0]["reports"][0][field] = value(d) if callable(value) else value
    return edit


@pytest.mark.parametrize("rel", ["../../secret.txt", "../../../../../../../etc/passwd",
                                 "arm64/../../../secret.txt"])
def test_report_file_outside_by_dotdot(tmp_path, secret, rel):
    procs = both(tmp_path, shard(tmp_path, set_report("file", rel)))
    assert_refused(tmp_path, procs, "$.jobs[0].reports[0].file")


def test_report_file_absolute(tmp_path, secret):
    procs = both(tmp_path, shard(tmp_path, set_report("file", lambda d: str(secret))))
    assert_refused(tmp_path, procs, "$.jobs[0].reports[0].file")


def test_report_file_symlink_leading_outside(tmp_path, secret):
    def edit(data, d):
        rel = data["jobs"][0]["reports"][0]["file"]
        (d / rel).unlink()
        (d / rel).symlink_to(secret)
    procs = both(tmp_path, shard(tmp_path, edit))
    assert_refused(tmp_path, procs, "$.jobs[0].reports[0].file", "outside the results")


def test_console_log_outside(tmp_path, secret):
    def edit(data, d):
        data["jobs"][0]["console_log"] = "../../secret.txt"
    assert_refused(tmp_path, both(tmp_path, shard(tmp_path, edit)), "$.jobs[0].console_log")


@pytest.mark.parametrize("job_id", ["../../x", "/tmp/x", "..", "a/b", ".hidden", "x\ny"])
def test_job_id_must_be_a_plain_name(tmp_path, job_id):
    def edit(data, d):
        data["jobs"][0]["job_id"] = job_id
    procs = both(tmp_path, shard(tmp_path, edit))
    assert_refused(tmp_path, procs, "$.jobs[0].job_id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]   # nothing created beside


@pytest.mark.parametrize("field,value", [("arch", "../../x"), ("workloads", [
    {"workload": "../../x", "status": "pass", "tests": [], "seconds": 0}])])
def test_other_names_that_become_paths(tmp_path, field, value):
    def edit(data, d):
        data["jobs"][0][field] = value
    assert_refused(tmp_path, both(tmp_path, shard(tmp_path, edit)), f"$.jobs[0].{field}")


def test_job_directory_symlink_and_symlinks_inside_are_not_followed(tmp_path, secret):
    """A valid summary whose job directory holds a symlink to a file outside: the merge
    works and the merged directory has no way out."""
    def edit(data, d):
        (d / "arm64" / "leak.txt").symlink_to(secret)
        (d / "arm64" / "etc").symlink_to("/etc")
    d = shard(tmp_path, edit)
    m = kto("merge", d, "--out", tmp_path / "merged", cwd=tmp_path)
    assert m.returncode == 1, m.stderr           # the lockdep report makes it red
    merged = tmp_path / "merged"
    assert (merged / "arm64" / "console.log").exists()
    assert not (merged / "arm64" / "leak.txt").exists()
    assert not os.path.lexists(merged / "arm64" / "etc")
    for p in merged.rglob("*"):
        assert SECRET not in (p.read_text(errors="replace") if p.is_file() else "")


BROKEN = {   # what each used to raise
    "jobs is a string (AttributeError)": lambda d, _: d.update(jobs="x"),
    "job without arch (KeyError)": lambda d, _: d["jobs"][0].pop("arch"),
    "report title null (sqlite IntegrityError)":
        lambda d, _: d["jobs"][0]["reports"][0].update(title=None),
    "report is a list": lambda d, _: d["jobs"][0]["reports"].__setitem__(0, [1, 2]),
    "tests is a number": lambda d, _: d["jobs"][0]["workloads"][0].update(tests=3),
    "unknown outcome": lambda d, _: d["jobs"][0].update(outcome="exploded"),
    "run missing": lambda d, _: d.pop("run"),
    "top level is a list": None,
}
WHERE = {"jobs is a string (AttributeError)": "$.jobs",
         "job without arch (KeyError)": "$.jobs[0]",
         "report title null (sqlite IntegrityError)": "$.jobs[0].reports[0].title",
         "report is a list": "$.jobs[0].reports[0]",
         "tests is a number": "$.jobs[0].workloads[0].tests",
         "unknown outcome": "$.jobs[0].outcome",
         "run missing": "$", "top level is a list": "$"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_schema_invalid_summary(tmp_path, case):
    if BROKEN[case] is None:
        d = shard(tmp_path, raw=b"[1, 2, 3]")
    else:
        d = shard(tmp_path, BROKEN[case])
    assert_refused(tmp_path, both(tmp_path, d), f": {WHERE[case]}:")


@pytest.mark.parametrize("raw", [
    b'{"run": "x", "jobs": ' + b"[" * 200000 + b"]" * 200000 + b"}",        # RecursionError
    b'{"run": "x", "jobs": [{"arch": "x86_64", "outcome": "ok", "reports": '
    + b"[" * 900 + b"]" * 900 + b"}]}",                              # parses, deep in reports
    b'{"run": "x", "jobs": []}\xff\xfe',                                    # not UTF-8
    b"\x00" * 100, b"", b'{"run": "x", "jobs": [], "version": 99}'],
    ids=["deep-list", "deep-in-reports", "non-utf8", "nul", "empty", "future-version"])
def test_unparseable_or_deep_summary(tmp_path, raw):
    assert_refused(tmp_path, both(tmp_path, shard(tmp_path, raw=raw)))


def test_the_real_committed_results_still_load(tmp_path):
    """The guard is not a wall: every committed results directory merges or records."""
    for name in sorted(p.name for p in (REPO / "tests" / "data" / "runs").iterdir()):
        shutil.copytree(REPO / "tests" / "data" / "runs" / name, tmp_path / "all" / name)
        n = kto("nightly", "--from-results", tmp_path / "all" / name, "--db",
                tmp_path / "h.sqlite", "--key", name, cwd=tmp_path)
        assert n.returncode in (0, 1, 2) and "Traceback" not in n.stderr, n.stderr
        assert "summary.json" not in n.stderr, n.stderr
