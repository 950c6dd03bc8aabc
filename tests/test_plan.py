"""kto plan: a run expands to arch x kconfig variant x (stock, series...) jobs; shards are
deterministic and every job is in exactly one; kto run --shard/--job pick those jobs."""
import argparse
import itertools
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator import config, pipeline, plan
from orchestrator.commands import run as run_cmd
from orchestrator.errors import ConfigError


@pytest.fixture
def project(tmp_path, repo_root):
    shutil.copytree(repo_root / "kconfigs", tmp_path / "kconfigs")
    (tmp_path / "kconfigs" / "kfence.config").write_text("CONFIG_KFENCE=y\n")
    for s in ("examples/kasan-vmalloc.mbox", "examples/lockdep-vmalloc.mbox", "s/a.mbox"):
        (tmp_path / "patches" / s).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "patches" / s).write_text("x")
    return tmp_path


MATRIX = """\
version: 1
runs:
  nightly:
    arches: [x86_64, arm64, riscv64]
    kconfig:
      fragments: [base.config, kasan.config]
      variants:
        kfence: {fragments: [kfence.config]}
        nolockdep: {fragments: [], build_dir: nold}
    series: [examples/kasan-vmalloc.mbox, examples/lockdep-vmalloc.mbox]
    workloads: [vmalloc, hugetlb]
  plain:
    arches: [x86_64, arm64]
    patches: s/a.mbox
    workloads: [vmalloc]
"""


def load(project, text=MATRIX):
    p = project / "runs.yaml"
    p.write_text(textwrap.dedent(text))
    return config.load(p)


def test_matrix_expands_to_every_combination(project):
    cfg = load(project)["nightly"]
    jobs = plan.expand(cfg)
    assert len(jobs) == 3 * 3 * 3
    ids = [j.id for j in jobs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert "x86_64" in ids and "arm64.kfence+examples-lockdep-vmalloc" in ids
    j = next(j for j in jobs if j.id == "riscv64.kfence+examples-kasan-vmalloc")
    assert (j.arch, j.variant, j.series) == ("riscv64", "kfence", "examples-kasan-vmalloc")
    assert [p.name for p in j.fragments] == ["base.config", "kasan.config", "kfence.config"]
    assert j.build_dir == "kfence" and j.patches.name == "kasan-vmalloc.mbox"
    assert j.workloads == ("vmalloc", "hugetlb")
    stock = next(j for j in jobs if j.id == "x86_64")
    assert stock.patches is None and stock.build_dir == "main"
    assert next(j for j in jobs if j.id == "arm64.nolockdep").build_dir == "nold"
    # the job's config is what run_job gets: narrowed to its arch, fragments and series
    narrowed = j.config(cfg)
    assert narrowed.arches == ["riscv64"] and narrowed.patches == j.patches
    assert [p.name for p in narrowed.fragments_for("riscv64")] == [
        "base.config", "riscv64.config", "kasan.config", "kfence.config"]


def test_plain_run_is_one_job_per_arch_named_by_arch(project):
    cfg = load(project)["plain"]
    jobs = plan.expand(cfg)
    assert [j.id for j in jobs] == ["arm64", "x86_64"]
    assert all(j.patches.name == "a.mbox" and j.series == "" for j in jobs)
    assert plan.is_trivial(cfg) and not plan.is_trivial(load(project)["nightly"])
    assert [j.id for j in plan.expand(cfg, ["x86_64"])] == ["x86_64"]
    with pytest.raises(ConfigError, match="no arch 'riscv64'"):
        plan.expand(cfg, ["riscv64"])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 27, 40])
def test_every_job_in_exactly_one_shard_balanced(project, n):
    jobs = plan.expand(load(project)["nightly"])
    shards = [plan.shard(jobs, i, n) for i in range(1, n + 1)]
    flat = [j.id for s in shards for j in s]
    assert sorted(flat) == sorted(j.id for j in jobs)          # all, none twice
    sizes = [len(s) for s in shards]
    # jobs of one (arch, build dir) move together: balanced to within one such group
    group = max(len(list(g)) for _, g in itertools.groupby(
        sorted(jobs, key=lambda j: (j.arch, j.build_dir)), key=lambda j: (j.arch, j.build_dir)))
    assert max(sizes) - min(sizes) <= group


def test_sharding_is_deterministic_and_order_independent(project):
    jobs = plan.expand(load(project)["nightly"])
    a = plan.shard_index(jobs, 4)
    b = plan.shard_index(list(reversed(jobs)), 4)
    c = plan.shard_index(plan.expand(load(project)["nightly"]), 4)
    assert a == b == c
    # a fixed expectation, so a change of the scheme is a visible test change
    ids = sorted(a)
    assert [a[i] for i in ids[:6]] == [1, 1, 1, 1, 1, 1]   # the three arm64 groups


def test_shards_keep_one_arch_and_build_dir_per_runner(project):
    """A runner's cache stays warm for its own builds: with as many shards as arches,
    each shard holds exactly one arch (its stock kernel and its series together)."""
    jobs = plan.expand(load(project)["nightly"])        # 3 arches x 3 build dirs x 3
    for n in (3, 9):
        shards = [plan.shard(jobs, i, n) for i in range(1, n + 1)]
        assert all(len({j.arch for j in s}) == 1 for s in shards), n
        assert sorted(len(s) for s in shards) == [27 // n] * n
    nine = [plan.shard(jobs, i, 9) for i in range(1, 10)]
    assert all(len({(j.arch, j.build_dir) for j in s}) == 1 for s in nine)


@pytest.mark.parametrize("text,msg", [
    ("1/0", "between 1 and N"), ("0/3", "between 1 and N"), ("4/3", "between 1 and N"),
    ("a/b", "expected I/N"), ("3", "expected I/N")])
def test_bad_shard_is_one_line_error(text, msg):
    with pytest.raises(ConfigError, match=msg):
        plan.parse_shard(text)


def test_parse_shard():
    assert plan.parse_shard("2/5") == (2, 5)


def test_config_errors_name_file_and_line(project):
    bad = MATRIX.replace("kfence: {fragments: [kfence.config]}",
                         "kfence: {fragments: [nope.config]}")
    with pytest.raises(ConfigError, match=r"runs.yaml:\d+: runs.nightly.kconfig.variants."
                                          r"kfence.fragments\[0\]: no such fragment"):
        load(project, bad)
    bad = MATRIX.replace("series: [examples/kasan-vmalloc.mbox,", "series: [nope.mbox,")
    with pytest.raises(ConfigError, match=r"runs.yaml:10: runs.nightly.series\[0\]"):
        load(project, bad)
    bad = MATRIX.replace("    workloads: [vmalloc, hugetlb]\n",
                         "    workloads: [vmalloc, hugetlb]\n    patches: s/a.mbox\n", 1)
    with pytest.raises(ConfigError, match="either patches .* or series"):
        load(project, bad)
    bad = MATRIX.replace("nolockdep:", "'no.lockdep':")
    with pytest.raises(ConfigError, match="variant name 'no.lockdep'"):
        load(project, bad)


def test_repo_nightly_run_is_3_arches_stock_plus_a_series(repo_root):
    cfg = config.load(repo_root / "runs.yaml")["nightly"]
    ids = [j.id for j in plan.expand(cfg)]
    assert len(ids) == 6 and {"x86_64", "arm64", "riscv64"} <= set(ids)
    assert sum("+" in i for i in ids) == 3


def _args(project, **kw):
    ns = dict(name="nightly", runs=project / "runs.yaml", arch=None, shard=None, job=None,
              results=project / "results", guests=None)
    ns.update(kw)
    return argparse.Namespace(**ns)


def test_run_shard_runs_exactly_that_shards_jobs(project, monkeypatch):
    """kto run --shard I/N hands pipeline.run_planned exactly plan.shard's jobs (no kernel
    is built: run_planned is replaced)."""
    cfg = load(project)["nightly"]
    seen = {}

    def fake_planned(cfg, jobs, root, progress, shard="", guests=None):
        seen["jobs"], seen["shard"] = [j.id for j in jobs], shard
        return "result"

    monkeypatch.setattr(pipeline, "run_planned", fake_planned)
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("not the planned path"))
    all_ids = []
    for i in (1, 2, 3, 4):
        run_cmd.execute(cfg, _args(project, shard=f"{i}/4"))
        assert seen["shard"] == f"{i}/4"
        assert seen["jobs"] == [j.id for j in plan.shard(plan.expand(cfg), i, 4)]
        all_ids += seen["jobs"]
    assert sorted(all_ids) == sorted(j.id for j in plan.expand(cfg))
    run_cmd.execute(cfg, _args(project, job=["arm64.kfence"]))
    assert seen["jobs"] == ["arm64.kfence"] and seen["shard"] == ""


def test_kto_plan_cli(project):
    load(project)
    out = subprocess.run([sys.executable, "-m", "orchestrator", "plan", "nightly", "--runs",
                          str(project / "runs.yaml"), "--shards", "4"],
                         capture_output=True, text=True, cwd=project)
    assert out.returncode == 0, out.stderr
    lines = [l for l in out.stdout.splitlines() if l.startswith("shard ")]
    assert len(lines) == 27
    assert lines[0].split()[:3] == ["shard", "1/4", "arm64"]
    bad = subprocess.run([sys.executable, "-m", "orchestrator", "plan", "nope", "--runs",
                          str(project / "runs.yaml")], capture_output=True, text=True,
                         cwd=project)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no run named" in bad.stderr


class _Stream:
    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_plain_lines_off_a_terminal_one_status_line_on_it():
    plain = run_cmd.Progress(_Stream(False))
    for m in ("x86_64: build: 10s, 5 objects, at mm/a.o", "x86_64: build: 20s, 9 objects",
              "x86_64: booted in 3.0s (tcg)"):
        plain(m)
    assert plain.stream.text.count("\n") == 3 and "\r" not in plain.stream.text
    tty = run_cmd.Progress(_Stream(True))
    for m in ("x86_64: build: 10s, 5 objects, at mm/a.o", "x86_64: build: 20s, 9 objects",
              "x86_64: booted in 3.0s (tcg)"):
        tty(m)
    # build progress rewrites one line; the next message replaces it and stays
    assert tty.stream.text.count("\n") == 1 and tty.stream.text.count("\r\x1b[K") == 2
    assert tty.stream.text.endswith("x86_64: booted in 3.0s (tcg)\n")


def test_run_planned_layout_without_a_kernel(project, monkeypatch):
    """run_planned with build_job, test_job and source.resolve replaced (no build, no
    guest): one directory per job id, job fields set, each job's narrowed config, formats
    written; a job that does not build is not tested."""
    from types import SimpleNamespace
    cfg = load(project)["nightly"]
    monkeypatch.setattr(pipeline.source, "resolve", lambda spec, progress: SimpleNamespace(
        origin="tarball x", commit="a" * 40, version="6.12.1"))
    monkeypatch.setattr("orchestrator.series.load_series", lambda p: f"series:{p.name}")
    calls, tested = [], []

    def fake_build_job(jcfg, src, series, arch, job, out, progress):
        calls.append((job.id, jcfg.arches, [p.name for p in jcfg.fragments], series))
        out.mkdir(parents=True)
        if "+" in job.id:
            job.outcome = "build-failed"
            return None
        return SimpleNamespace(job=job)

    def fake_test_job(built):
        tested.append(built.job.id)
        built.job.outcome = "ok" if "kfence" not in built.job.id else "boot-failed"

    monkeypatch.setattr(pipeline, "build_job", fake_build_job)
    monkeypatch.setattr(pipeline, "test_job", fake_test_job)
    jobs = plan.shard(plan.expand(cfg), 2, 4)
    r = pipeline.run_planned(cfg, jobs, project / "results", lambda m: None, "2/4")
    assert [c[0] for c in calls] == [j.id for j in jobs]
    assert sorted(tested) == sorted(j.id for j in jobs if "+" not in j.id)
    for j in r.jobs:      # the timeline: every job built, the built ones had a guest
        assert 0 <= j.phases["build"][0] <= j.phases["build"][1]
        assert ("guest" in j.phases) == (j.id in tested)
    assert [j.id for j in r.jobs] == [j.id for j in jobs] and r.shard == "2/4"
    for jid, arches, frags, series in calls:
        j = next(j for j in jobs if j.id == jid)
        assert arches == [j.arch] and ("kfence.config" in frags) == (j.variant == "kfence")
        assert series == (f"series:{j.patches.name}" if j.patches else None)
        assert (r.directory / jid).is_dir()
    job = r.jobs[0]
    assert "--job" in job.reproducer and job.id in job.reproducer
    assert {"summary.json", "junit.xml", "kcidb.json", "index.html"} <= {
        p.name for p in r.directory.iterdir()}
    back = __import__("orchestrator.results", fromlist=["load"]).load(r.directory)
    assert [(j.id, j.variant, j.series) for j in back.jobs] == [
        (j.id, j.variant, j.series) for j in jobs]
    assert r.exit_code() == (1 if any("kfence" in j.id or "+" in j.id for j in jobs) else 0)


def test_run_planned_interrupted_marks_running_and_unstarted_jobs(project, monkeypatch):
    """Ctrl-C while job 2 builds and job 1's guest runs: every guest is stopped, both jobs
    are recorded as interrupted (job 1 not as the infra error its dying guest raised),
    jobs never started are not recorded, and the interrupt goes on."""
    import threading
    from types import SimpleNamespace
    from orchestrator.errors import KtoError
    cfg = load(project)["nightly"]
    monkeypatch.setattr(pipeline.source, "resolve", lambda spec, progress: SimpleNamespace(
        origin="tarball x", commit="a" * 40, version="6.12.1"))
    monkeypatch.setattr("orchestrator.series.load_series", lambda p: f"series:{p.name}")
    guest_up, killed = threading.Event(), threading.Event()
    monkeypatch.setattr(pipeline.vm, "stop_all", lambda refuse_new=False: killed.set())

    def fake_build_job(jcfg, src, series, arch, job, out, progress):
        out.mkdir(parents=True)
        if len(built) == 1:
            assert guest_up.wait(10)
            raise KeyboardInterrupt
        built.append(job.id)
        return SimpleNamespace(job=job)

    def fake_test_job(b):
        guest_up.set()
        assert killed.wait(10), "the guest was not stopped"
        raise KtoError("guest is not booted")      # what vm.run says once QEMU is gone

    built = []
    monkeypatch.setattr(pipeline, "build_job", fake_build_job)
    monkeypatch.setattr(pipeline, "test_job", fake_test_job)
    jobs = plan.expand(cfg)[:4]
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_planned(cfg, jobs, project / "results", lambda m: None, guests=1)
    back = __import__("orchestrator.results", fromlist=["load"]).load(
        next((project / "results").iterdir()))
    assert [(j.id, j.outcome) for j in back.jobs] == [(jobs[0].id, "interrupted"),
                                                      (jobs[1].id, "interrupted")]
