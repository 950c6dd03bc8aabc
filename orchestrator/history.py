"""Run history in SQLite, and tonight-vs-history comparison for kto nightly.

Tables: ``runs`` (one row per recorded night, under a history key, by default the run's
name), ``sightings`` (which unexpected report titles each run's jobs had, and how
many times) and ``titles`` (per key and title: first seen, last seen, in how many runs).
Only unexpected reports are recorded: the ones a workload provokes on purpose
(kasan-kunit) are part of that workload passing.

compare() classifies each title against the history *before* tonight:

- **new**: never seen under this key (or seen before but absent from the previous run:
  it is back, and the line says when it was last seen);
- **still present (since DATE)**: it was in the previous run too;
- **fixed**: in the previous run, not tonight, and tonight the job(s) that had it
  completed (a job that did not get to run cannot fix anything: such titles are listed
  as **not checked**).

A title matching known-issues.yaml keeps its class but is marked known, and does not
make the night red.

A night's identity is its content, not where it lies: the run's name, its start time and a
digest of its results (``identity()``). CI merges every night into the same directory, so
a path says nothing; recording the same results again (a retried CI job) is a no-op that
says so, and compare() then gives the verdict that night had against the runs before it.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.known_issues import KnownIssue, match

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL, run TEXT NOT NULL, directory TEXT NOT NULL,
  started TEXT NOT NULL, finished TEXT, recorded TEXT NOT NULL,
  exit_code INTEGER NOT NULL, jobs TEXT NOT NULL,      -- job ids that completed (outcome ok)
  identity TEXT NOT NULL,                              -- identity(): run@started#digest
  UNIQUE (key, identity));
CREATE TABLE IF NOT EXISTS sightings (
  run_id INTEGER NOT NULL REFERENCES runs(id), title TEXT NOT NULL, type TEXT,
  job TEXT NOT NULL, arch TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (run_id, title, job));
CREATE TABLE IF NOT EXISTS titles (
  key TEXT NOT NULL, title TEXT NOT NULL, type TEXT,
  first_seen TEXT NOT NULL, first_run INTEGER NOT NULL,
  last_seen TEXT NOT NULL, last_run INTEGER NOT NULL,
  runs INTEGER NOT NULL, occurrences INTEGER NOT NULL,
  PRIMARY KEY (key, title));
"""


def default_db() -> Path:
    from orchestrator.cache import cache_root
    return cache_root() / "history.sqlite"


@dataclass
class TitleStatus:
    title: str
    status: str               # new | still | fixed | not-checked
    jobs: list[str]           # tonight's jobs with it (fixed/not-checked: last run's)
    first_seen: str = ""
    last_seen: str = ""       # before tonight
    runs: int = 0             # runs it was seen in, tonight included
    known: KnownIssue | None = None
    type: str = ""
    fixed_on: str = ""        # new, seen before: the first night it was absent after that
    since: str = ""           # still: start of its unbroken series of nights
    streak: int = 0           # still: nights in that series, tonight included
    back_on: str = ""         # new: tonight

    def line(self) -> str:
        label = {"new": "NEW", "still": "STILL", "fixed": "FIXED",
                 "not-checked": "UNCHECKED"}[self.status]
        if self.status == "new":
            what = (f"new: regression, fixed on {_day(self.fixed_on)}, back on "
                    f"{_day(self.back_on)} (seen before, last on {_day(self.last_seen)})"
                    if self.last_seen else "new")
        elif self.status == "still":
            what = f"still present (since {_day(self.since)}, {self.streak} runs in a row"
            what += (f"; first seen {_day(self.first_seen)}, {self.runs} runs)"
                     if self.runs != self.streak else ")")
        elif self.status == "fixed":
            what = f"fixed (last seen {_day(self.last_seen)})"
        else:
            what = "not checked tonight (its job did not complete)"
        known = f"  [known: {self.known.reason}]" if self.known else ""
        return f"{label:<9} {self.title}  -- {what}; {', '.join(self.jobs)}{known}"


@dataclass
class Verdict:
    key: str
    run_id: int
    previous: dict | None             # the previous run's row, or None on the first night
    already: bool = False             # these results were recorded before: nothing written
    titles: list[TitleStatus] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)    # jobs/tests that failed
    infra: list[str] = field(default_factory=list)       # infrastructure errors

    def by(self, status: str, known: bool | None = None) -> list[TitleStatus]:
        return [t for t in self.titles if t.status == status
                and (known is None or bool(t.known) == known)]

    def exit_code(self, strict: bool = False) -> int:
        if self.infra:
            return 2
        red = self.by("new", known=False) + (self.by("still", known=False) if strict else [])
        return 1 if red or self.failures else 0

    def lines(self) -> list[str]:
        out = [t.line() for st in ("new", "still", "fixed", "not-checked") for t in self.by(st)]
        new = self.by("new", known=False)
        out.append("no new reports" if not new else f"{len(new)} new report title(s)")
        out += [f"FAILED    {f}" for f in self.failures]
        out += [f"INFRA     {e}" for e in self.infra]
        return out


def _day(ts: str) -> str:
    return (ts or "?")[:10]


class History:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60)
            self.db.row_factory = sqlite3.Row
            self._migrate()
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise KtoError(f"{self.path}: not a usable history database ({e})") from None

    def _migrate(self) -> None:
        """Databases from before content identity had UNIQUE (key, directory): rebuild
        ``runs`` with an identity column (old rows get a unique legacy identity), under
        an immediate transaction so that two kto processes opening it do it once."""
        def columns():
            return [r["name"] for r in self.db.execute("PRAGMA table_info(runs)")]
        if not columns() or "identity" in columns():
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if "identity" not in columns():
                self.db.execute(SCHEMA.split(";")[0].replace("EXISTS runs", "EXISTS runs_v2"))
                self.db.execute("INSERT INTO runs_v2 SELECT id, key, run, directory, started, "
                                "finished, recorded, exit_code, jobs, 'legacy:' || id FROM runs")
                self.db.execute("DROP TABLE runs")
                self.db.execute("ALTER TABLE runs_v2 RENAME TO runs")
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def runs(self, key: str) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM runs WHERE key = ? ORDER BY id", (key,))]

    def titles(self, key: str) -> dict[str, dict]:
        return {r["title"]: dict(r) for r in self.db.execute(
            "SELECT * FROM titles WHERE key = ?", (key,))}

    def sightings(self, run_id: int) -> dict[str, dict[str, int]]:
        """title -> {job: count} for one recorded run."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for r in self.db.execute("SELECT * FROM sightings WHERE run_id = ?", (run_id,)):
            out[r["title"]][r["job"]] = r["count"]
        return dict(out)

    def record(self, result, key: str | None = None) -> tuple[int, bool]:
        """Add a night (a RunResult) and its unexpected report titles under ``key``.
        Returns (its run id, True); for results already recorded under that key,
        (the id they have, False) and nothing is written."""
        key = key or result.run
        ident = identity(result)
        directory = str(Path(result.directory))
        row = self.db.execute("SELECT id FROM runs WHERE key = ? AND identity = ?",
                              (key, ident)).fetchone()
        if row:
            return row["id"], False
        seen: dict[str, dict] = {}
        for job in result.jobs:
            for r in job.unexpected_reports():
                s = seen.setdefault(r.title, {"type": r.type, "jobs": defaultdict(int),
                                              "arch": {}})
                s["jobs"][job.id] += 1
                s["arch"][job.id] = job.arch
        stamp = result.started or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (key, run, directory, started, finished, recorded, "
                "exit_code, jobs, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key, identity) DO NOTHING",
                (key, result.run, directory, stamp, result.finished,
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), result.exit_code(),
                 " ".join(sorted(j.id for j in result.jobs if j.outcome == "ok")), ident))
            if cur.rowcount == 0:      # another process recorded the same night just now
                row = self.db.execute("SELECT id FROM runs WHERE key = ? AND identity = ?",
                                      (key, ident)).fetchone()
                return row["id"], False
            run_id = cur.lastrowid
            for title, s in seen.items():
                for job_id, n in s["jobs"].items():
                    self.db.execute("INSERT INTO sightings VALUES (?, ?, ?, ?, ?, ?)",
                                    (run_id, title, s["type"], job_id, s["arch"][job_id], n))
                total = sum(s["jobs"].values())
                self.db.execute(
                    "INSERT INTO titles VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) "
                    "ON CONFLICT (key, title) DO UPDATE SET last_seen = excluded.last_seen, "
                    "last_run = excluded.last_run, runs = runs + 1, "
                    "occurrences = occurrences + excluded.occurrences",
                    (key, title, s["type"], stamp, run_id, stamp, run_id, total))
        return run_id, True

    def titles_before(self, key: str, run_id: int) -> dict[str, dict]:
        """Per title, over the runs recorded under ``key`` before ``run_id``: first_seen,
        last_seen, runs, type, last_run, and fixed_on: the first run after last_seen
        (None if it was in the last run before ``run_id``), and since/streak: when its
        current unbroken series of runs started and how many runs it has."""
        out = {r["title"]: dict(r) for r in self.db.execute(
            "SELECT s.title AS title, MIN(r.started) AS first_seen, MAX(r.started) AS "
            "last_seen, COUNT(DISTINCT r.id) AS runs, MAX(s.type) AS type, MAX(r.id) AS "
            "last_run FROM sightings s JOIN runs r ON s.run_id = r.id "
            "WHERE r.key = ? AND r.id < ? GROUP BY s.title", (key, run_id))}
        for t in out.values():
            nxt = self.db.execute("SELECT started FROM runs WHERE key = ? AND id > ? AND "
                                  "id < ? ORDER BY id LIMIT 1",
                                  (key, t["last_run"], run_id)).fetchone()
            t["fixed_on"] = nxt["started"] if nxt else None
            gap = self.db.execute(      # the last run before run_id without the title
                "SELECT MAX(id) AS id FROM runs WHERE key = ? AND id < ? AND id NOT IN "
                "(SELECT run_id FROM sightings WHERE title = ?)",
                (key, run_id, t["title"])).fetchone()["id"] or 0
            streak = self.db.execute(
                "SELECT MIN(started) AS since, COUNT(*) AS n FROM runs WHERE key = ? AND "
                "id > ? AND id < ?", (key, gap, run_id)).fetchone()
            t["since"], t["streak"] = streak["since"], streak["n"]
        return out


def identity(result) -> str:
    """``RUN@STARTED#DIGEST``: the digest covers what a night found (per job: outcome,
    commits, build key, workload and test statuses, report titles and files), not where
    its files are, so copies and re-merges of one night are the same night."""
    jobs = []
    for j in sorted(result.jobs, key=lambda j: j.id):
        jobs.append([j.id, j.arch, j.outcome, j.source_commit, j.commit, j.kernel_release,
                     (j.build or {}).get("key"), (j.build or {}).get("status"), j.error,
                     [[w.workload, w.status, w.reason, [[t.name, t.status] for t in w.tests]]
                      for w in j.workloads],
                     [[r.title, r.type, r.expected, r.file] for r in j.reports]])
    digest = hashlib.sha256(json.dumps([result.run, result.source, jobs],
                                       sort_keys=True).encode()).hexdigest()[:16]
    return f"{result.run}@{result.started}#{digest}"


def compare(history: History, result, known: list[KnownIssue] = (),
            key: str | None = None) -> Verdict:
    """Record ``result`` under ``key`` (default: its run name) and classify its report
    titles against the runs recorded before it."""
    key = key or result.run
    run_id, recorded = history.record(result, key)
    before = [r for r in history.runs(key) if r["id"] < run_id]
    previous = before[-1] if before else None
    titles_before = history.titles_before(key, run_id)
    prev_sightings = history.sightings(previous["id"]) if previous else {}
    v = Verdict(key, run_id, previous, already=not recorded)

    tonight: dict[str, list] = defaultdict(list)       # title -> [(job, arch, type)]
    for job in result.jobs:
        for r in job.unexpected_reports():
            if job.id not in [j for j, _, _ in tonight[r.title]]:
                tonight[r.title].append((job.id, job.arch, r.type))
    completed = {j.id for j in result.jobs if j.outcome == "ok"}
    arch_of = {j.id: j.arch for j in result.jobs}

    def known_for(title, arches):
        for a in arches or [None]:
            k = match(list(known), title, a, result.run)
            if k:
                return k
        return None

    for title, where in sorted(tonight.items()):
        jobs = [j for j, _, _ in where]
        old = titles_before.get(title)
        was_last_night = title in prev_sightings
        status = "still" if was_last_night else "new"
        v.titles.append(TitleStatus(
            title, status, jobs, first_seen=old["first_seen"] if old else result.started,
            last_seen=old["last_seen"] if old else "", runs=(old["runs"] if old else 0) + 1,
            known=known_for(title, [a for _, a, _ in where]), type=where[0][2],
            fixed_on=(old or {}).get("fixed_on") or "", back_on=result.started,
            since=old["since"] if was_last_night else result.started,
            streak=old["streak"] + 1 if was_last_night else 1))
    for title, jobs in sorted(prev_sightings.items()):
        if title in tonight:
            continue
        checked = all(j in completed for j in jobs)
        old = titles_before[title]
        v.titles.append(TitleStatus(
            title, "fixed" if checked else "not-checked", sorted(jobs),
            first_seen=old["first_seen"], last_seen=old["last_seen"], runs=old["runs"],
            known=known_for(title, [arch_of.get(j) for j in jobs if arch_of.get(j)]),
            type=old["type"] or ""))

    for job in result.jobs:
        if job.outcome == "infra-error":
            v.infra.append(f"{job.id}: {job.error.splitlines()[0] if job.error else ''}")
        elif job.outcome != "ok":
            v.failures.append(f"{job.id}: {job.outcome}"
                              + (f": {job.error.splitlines()[0]}" if job.error else ""))
        for w in job.workloads:
            bad = [t.name for t in w.tests if t.status not in ("pass", "skip", "xfail")]
            if bad:
                v.failures.append(f"{job.id}: {w.workload}: {len(bad)} test(s) failed: "
                                  + ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""))
            elif w.status not in ("pass", "skip"):
                v.failures.append(f"{job.id}: {w.workload}: {w.status} {w.reason}".rstrip())
    return v
