"""History and the nightly comparison on real recorded runs: the clean matrix-quick arm64
run (no reports) and the arm64 selftest run (the series' lockdep inversion, plus 163 KASAN
reports provoked on purpose by kasan-kunit), recorded as nights under one history key."""
import copy
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator import history, known_issues, results
from orchestrator.errors import ConfigError, KtoError

RUNS = Path(__file__).parent / "data" / "runs"
LOCKDEP = "possible deadlock in kto_abba_selftest"


@pytest.fixture
def night(tmp_path):
    n = [0]

    def load(name, started=None):
        n[0] += 1
        d = tmp_path / f"night{n[0]}" / name
        shutil.copytree(RUNS / name, d)
        r = results.load(d)
        if started:
            r.started = started
        return r
    return load


@pytest.fixture
def db(tmp_path):
    with history.History(tmp_path / "h.sqlite") as h:
        yield h


def test_clean_nights_then_bad_series_then_fixed(db, night):
    v1 = history.compare(db, night("matrix-quick-arm64", "2026-11-20T01:00:00Z"), key="k")
    assert v1.previous is None and v1.titles == [] and v1.exit_code() == 0
    v2 = history.compare(db, night("matrix-quick-arm64", "2026-11-21T01:00:00Z"), key="k")
    assert v2.previous["started"].startswith("2026-11-20")
    assert v2.titles == [] and "no new reports" in v2.lines() and v2.exit_code() == 0

    # the bad series: exactly its new title, not the 163 expected KASAN reports
    v3 = history.compare(db, night("selftest-arm64", "2026-11-22T01:00:00Z"), key="k")
    assert [(t.title, t.status) for t in v3.titles] == [(LOCKDEP, "new")]
    assert v3.titles[0].jobs == ["arm64"] and v3.exit_code() == 1
    assert v3.lines()[0].startswith(f"NEW       {LOCKDEP}")
    assert "1 new report title(s)" in v3.lines()

    # second night with it: still present since the first, no new reports, green
    v4 = history.compare(db, night("selftest-arm64", "2026-11-23T01:00:00Z"), key="k")
    (t,) = v4.titles
    assert (t.status, t.first_seen[:10], t.runs) == ("still", "2026-11-22", 2)
    assert "still present (since 2026-11-22, 2 runs in a row)" in t.line()
    assert "no new reports" in v4.lines()
    assert v4.exit_code() == 0 and v4.exit_code(strict=True) == 1

    # the series dropped: fixed (arm64 ran to completion)
    v5 = history.compare(db, night("matrix-quick-arm64", "2026-11-24T01:00:00Z"), key="k")
    assert [(t.title, t.status) for t in v5.titles] == [(LOCKDEP, "fixed")]
    assert "fixed (last seen 2026-11-23)" in v5.titles[0].line() and v5.exit_code() == 0

    # back again: new, saying when it was last seen
    v6 = history.compare(db, night("selftest-arm64", "2026-11-25T01:00:00Z"), key="k")
    assert v6.titles[0].status == "new" and "last on 2026-11-23" in v6.titles[0].line()
    assert "regression, fixed on 2026-11-24, back on 2026-11-25" in v6.titles[0].line()

    row = db.titles("k")[LOCKDEP]
    assert (row["first_seen"][:10], row["last_seen"][:10], row["runs"],
            row["occurrences"]) == ("2026-11-22", "2026-11-25", 3, 3)
    assert len(db.runs("k")) == 6


def test_known_issue_keeps_the_night_green(db, night, tmp_path):
    kf = tmp_path / "known.yaml"
    kf.write_text(textwrap.dedent("""\
        - title: '^possible deadlock in kto_abba_selftest$'
          reason: the selftest series inverts two mutexes on purpose
          arches: [arm64, x86_64]
        """))
    known = known_issues.load(kf)
    history.compare(db, night("matrix-quick-arm64"), known, key="k")
    v = history.compare(db, night("selftest-arm64"), known, key="k")
    (t,) = v.titles
    assert t.status == "new" and t.known.reason.startswith("the selftest series")
    assert "[known: the selftest series" in t.line()
    assert v.exit_code() == 0 and "no new reports" in v.lines()
    # an arch outside the entry is not covered
    other = known_issues.load(kf)
    other[0].arches = ["riscv64"]
    v = history.compare(db, night("selftest-arm64"), other, key="k2")
    assert v.titles[0].known is None and v.exit_code() == 1


def test_not_checked_when_the_job_did_not_complete(db, night):
    history.compare(db, night("selftest-arm64"), key="k")
    r = night("matrix-quick-arm64")
    r.jobs[0].outcome, r.jobs[0].error = "boot-failed", "panic"
    v = history.compare(db, r, key="k")
    assert [(t.title, t.status) for t in v.titles] == [(LOCKDEP, "not-checked")]
    assert v.failures == ["arm64: boot-failed: panic"] and v.exit_code() == 1


def test_failures_and_infra(db, night):
    r = night("matrix-quick-arm64")
    r.jobs[0].workloads[0].tests[0].status = "fail"
    v = history.compare(db, r, key="k")
    assert v.failures == ["arm64: vmalloc: 1 test(s) failed: fix_size_alloc_test"]
    assert v.exit_code() == 1
    v = history.compare(db, night("mm-vmemmap-x86_64"), key="k")
    assert v.infra and "did not survive olddefconfig" in v.infra[0] and v.exit_code() == 2


def test_identity_is_content_not_path(db, night, tmp_path):
    """CI merges every night into the same directory: the same path with new results is
    a new night, and the same results again (a retried job, a copy) are a no-op that
    gives that night's verdict again."""
    d = tmp_path / "merged"
    shutil.copytree(RUNS / "nightly-night1", d)
    v1 = history.compare(db, results.load(d), key="n")
    shutil.rmtree(d)
    shutil.copytree(RUNS / "nightly-night2", d)
    v2 = history.compare(db, results.load(d), key="n")
    assert not v1.already and not v2.already and v2.run_id != v1.run_id
    assert [t.status for t in v2.titles] == ["still"] and v2.exit_code() == 0
    again = history.compare(db, night("nightly-night2"), key="n")    # a copy elsewhere
    assert again.already and again.run_id == v2.run_id
    assert [t.line() for t in again.titles] == [t.line() for t in v2.titles]
    again1 = history.compare(db, results.load(RUNS / "nightly-night1"), key="n")
    assert again1.already and again1.run_id == v1.run_id and again1.previous is None
    assert [t.status for t in again1.titles] == ["new"] and again1.exit_code() == 1
    assert len(db.runs("n")) == 2
    # one changed result is another night, even with the same start time
    r = night("nightly-night2")
    r.jobs[0].workloads[0].tests[0].status = "fail"
    assert history.identity(r) != history.identity(results.load(RUNS / "nightly-night2"))
    assert not history.compare(db, r, key="n").already


def test_old_database_is_migrated(tmp_path, night):
    """A history database from before content identity (UNIQUE key+directory) keeps its
    nights and takes new ones."""
    import sqlite3
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript(history.SCHEMA.replace(
        "  identity TEXT NOT NULL,                              -- identity(): run@started#digest\n"
        "  UNIQUE (key, identity));", "  UNIQUE (key, directory));"))
    con.execute("INSERT INTO runs (key, run, directory, started, finished, recorded, "
                "exit_code, jobs) VALUES ('n', 'nightly', '/x/merged', '2026-11-22T02:00:00Z', "
                "'', '', 1, 'x86_64+selftest')")
    con.execute(f"INSERT INTO sightings VALUES (1, '{LOCKDEP}', 'LOCKDEP', 'x86_64+selftest', "
                "'x86_64', 1)")
    con.commit()
    con.close()
    with history.History(path) as h:
        v = history.compare(h, night("nightly-night2"), key="n")
        assert [(t.title, t.status, t.since[:10]) for t in v.titles] == [
            (LOCKDEP, "still", "2026-11-22")]
        assert [r["identity"] for r in h.runs("n")][0] == "legacy:1"


def test_thirty_nights_appear_persist_fix_regress(db, tmp_path):
    """35 simulated nights (dates 2026-10-01..), three titles on a schedule, each night a
    fresh results directory at the same path (as in CI):
    A appears on night 3, persists, is fixed on night 10, comes back on night 20;
    B is there from night 1 to night 30 then fixed; C flickers every 7th night. Every
    night's verdict is checked against the schedule, then every night is replayed (a
    retried job) and gives the same verdict again."""
    A, B, C = "KASAN: use-after-free in foo", "WARNING in bar", "possible deadlock in baz"
    present = {A: set(range(3, 10)) | set(range(20, 36)), B: set(range(1, 31)),
               C: {7, 14, 21, 28, 35}}
    base = json.loads((RUNS / "matrix-quick-arm64" / "summary.json").read_text())
    d = tmp_path / "merged"

    def night_dir(n):
        data = copy.deepcopy(base)
        data["started"] = f"2026-{10 + (n - 1) // 31:02d}-{(n - 1) % 31 + 1:02d}T02:00:00Z"
        shutil.rmtree(d, ignore_errors=True)
        (d / "arm64" / "reports").mkdir(parents=True)
        reports = []
        for k, (title, nights) in enumerate(sorted(present.items())):
            if n in nights:
                rel = f"arm64/reports/{k}.txt"
                (d / rel).write_text(f"TITLE: {title}\n\n{title}\n")
                reports.append({"title": title, "type": title.split(":")[0].split()[0],
                                "frame": None, "corrupted": False, "workload": "vmalloc",
                                "expected": False, "file": rel, "first_line": title})
        data["jobs"][0]["reports"] = reports
        (d / "summary.json").write_text(json.dumps(data))
        return results.load(d)

    def day(n):
        return night_dir(n).started[:10]

    verdicts = {}
    for n in range(1, 36):
        v = history.compare(db, night_dir(n), key="sim")
        verdicts[n] = [t.line() for t in v.titles]
        got = {t.title: t for t in v.titles}
        for title, nights in present.items():
            if n in nights and n - 1 in nights:
                t = got[title]
                start = max(m for m in range(1, n + 1) if m - 1 not in nights and m in nights)
                assert (t.status, t.since[:10], t.streak) == ("still", day(start),
                                                              n - start + 1), (n, title)
            elif n in nights:
                t = got[title]
                assert t.status == "new", (n, title)
                earlier = [m for m in nights if m < n]
                if earlier:          # a regression: when it was fixed, when it came back
                    fixed = min(m for m in range(max(earlier), n) if m not in nights)
                    assert (f"fixed on {day(fixed)}, back on {day(n)}") in t.line(), (n, t.line())
                else:
                    assert t.line().split("-- ")[1].startswith("new;"), t.line()
            elif n - 1 in nights:
                assert got[title].status == "fixed", (n, title)
                assert f"last seen {day(n - 1)}" in got[title].line()
            else:
                assert title not in got, (n, title)
        new = {t for t in got if got[t].status == "new"}
        assert v.exit_code() == (1 if new else 0), n
    assert len(db.runs("sim")) == 35
    assert verdicts[20][0] == (f"NEW       {A}  -- new: regression, fixed on 2026-10-10, back "
                               "on 2026-10-20 (seen before, last on 2026-10-09); arm64")
    row = db.titles("sim")[A]
    assert (row["first_seen"][:10], row["last_seen"][:10], row["runs"]) == (
        "2026-10-03", "2026-11-04", 7 + 16)
    for n in range(1, 36):            # every night again: recorded already, same verdict
        v = history.compare(db, night_dir(n), key="sim")
        assert v.already and [t.line() for t in v.titles] == verdicts[n], n
    assert len(db.runs("sim")) == 35


def test_keys_are_separate(db, night):
    history.compare(db, night("selftest-arm64"), key="a")
    v = history.compare(db, night("selftest-arm64"), key="b")
    assert v.titles[0].status == "new"


def test_known_issues_file_errors(tmp_path, repo_root):
    [entry] = known_issues.load(repo_root / "known-issues.yaml")   # tests/test_known_issues.py
    assert entry.runs == ["mm-vmemmap"] and entry.where.endswith("known-issues.yaml:21")
    bad = tmp_path / "k.yaml"
    bad.write_text("- title: 'a('\n  reason: x\n")
    with pytest.raises(ConfigError, match=r"k.yaml:1: \[0\].title: not a valid regular"):
        known_issues.load(bad)
    bad.write_text("- title: a\n  reason: x\n- title: b\n")
    with pytest.raises(ConfigError, match=r"k.yaml:3: \[1\]: missing required key 'reason'"):
        known_issues.load(bad)
    bad.write_text("- title: a\n  reason: x\n  arches: [mips]\n")
    with pytest.raises(ConfigError, match=r"k.yaml:3: \[0\].arches\[0\]: unknown arch 'mips'"):
        known_issues.load(bad)


def kto(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "orchestrator", *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd)


def test_kto_nightly_from_results_cli(tmp_path):
    for n, name in enumerate(["matrix-quick-arm64", "matrix-quick-arm64", "selftest-arm64"]):
        shutil.copytree(RUNS / name, tmp_path / f"n{n}")
    s = tmp_path / "n1" / "summary.json"          # another night of the same run
    s.write_text(s.read_text().replace('"started": "', '"started": "2099'))
    dbp = tmp_path / "h.sqlite"
    outs = [kto("nightly", "--from-results", tmp_path / f"n{n}", "--db", dbp, "--key", "night",
                cwd=tmp_path) for n in range(3)]
    assert [o.returncode for o in outs] == [0, 0, 1], [o.stderr for o in outs]
    assert "first recorded night" in outs[0].stdout
    assert "no new reports" in outs[1].stdout and "GREEN" in outs[1].stdout
    assert f"NEW       {LOCKDEP}" in outs[2].stdout and "RED" in outs[2].stdout
    assert outs[2].stdout.count("NEW ") == 1
    again = kto("nightly", "--from-results", tmp_path / "n2", "--db", dbp, "--key", "night",
                cwd=tmp_path)
    assert again.returncode == 1 and "already recorded as history run 3" in again.stdout
    assert again.stdout.count("NEW ") == 1 and again.stderr == ""
    none = kto("nightly", "--db", dbp, cwd=tmp_path)
    assert none.returncode == 2 and none.stderr.count("\n") == 1


def test_three_real_nights_of_the_nightly_matrix(db, night):
    """The recorded real nights of docs/nightly.md (3 arches x {stock, selftest series},
    then the same plus the KASAN example series, under one key): the first night's new
    title, a second night with no new reports, and a bad night that reports exactly the
    bad series' titles, on each arch."""
    jobs = ["arm64+selftest", "riscv64+selftest", "x86_64+selftest"]
    v1 = history.compare(db, night("nightly-night1"), key="nightly")
    assert [(t.title, t.status, t.jobs) for t in v1.titles] == [(LOCKDEP, "new", jobs)]
    assert v1.failures == [] and v1.exit_code() == 1
    v2 = history.compare(db, night("nightly-night2"), key="nightly")
    assert [(t.title, t.status) for t in v2.titles] == [(LOCKDEP, "still")]
    assert "no new reports" in v2.lines() and v2.failures == [] and v2.exit_code() == 0
    v3 = history.compare(db, night("nightly-bad-night3"), key="nightly")
    new = sorted((t.title, tuple(t.jobs)) for t in v3.titles if t.status == "new")
    bad = tuple(f"{a}+examples-kasan-vmalloc" for a in ("arm64", "riscv64", "x86_64"))
    assert new == [("KASAN: slab-out-of-bounds Read in vm_map_ram", bad),
                   ("WARNING in vm_map_ram", bad)]
    assert [t.status for t in v3.titles if t.title == LOCKDEP] == ["still"]
    assert v3.exit_code() == 1


def test_concurrent_nightlies_on_one_database(tmp_path):
    """Eight kto nightly --from-results at once on one database: five different nights
    and the same night three times (a retried CI job racing the first). Every night is
    recorded once, no process fails."""
    dirs = []
    for n in range(5):
        d = tmp_path / f"n{n}"
        shutil.copytree(RUNS / "selftest-arm64", d)
        s = d / "summary.json"
        s.write_text(s.read_text().replace('"started": "2026', f'"started": "20{30 + n}'))
        dirs.append(d)
    dirs += [dirs[0]] * 3
    dbp = tmp_path / "h.sqlite"
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "nightly",
                               "--from-results", d, "--db", dbp, "--key", "k"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for d in dirs]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(rc in (0, 1) and err == "" for rc, _, err in outs), outs
    assert sum("already recorded" in out for _, out, _ in outs) == 3
    with history.History(dbp) as h:
        assert len(h.runs("k")) == 5
