"""kto build RUN: the jobs kto run would run (--arch, --job, --shard), each through
pipeline.build_job (replaced here: no kernel), one line per job and kto run's exit
codes. The slow test builds nothing either: it runs only when the default kernel and its
selftests are already in the build store."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import cli, pipeline, plan, source
from orchestrator.commands import build as build_cmd
from orchestrator.errors import ConfigError, KtoError

REPO = Path(__file__).resolve().parent.parent

RUNS = """\
version: 1
runs:
  nightly:
    arches: [x86_64, arm64, riscv64]
    kconfig:
      fragments: [base.config, kasan.config]
      variants:
        kfence: {fragments: [kfence.config]}
    series: [examples/a.mbox]
    workloads: [vmalloc]
"""


@pytest.fixture
def project(tmp_path, repo_root, monkeypatch):
    shutil.copytree(repo_root / "kconfigs", tmp_path / "kconfigs")
    (tmp_path / "kconfigs" / "kfence.config").write_text("CONFIG_KFENCE=y\n")
    (tmp_path / "patches" / "examples").mkdir(parents=True)
    (tmp_path / "patches" / "examples" / "a.mbox").write_text("x")
    (tmp_path / "runs.yaml").write_text(textwrap.dedent(RUNS))
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(source, "resolve", lambda spec, progress=print: SimpleNamespace(
        origin="tarball x", commit="a" * 40, version="6.12.1"))
    monkeypatch.setattr("orchestrator.series.load_series", lambda p: f"series:{p.name}")
    return tmp_path


def fake_build_job(calls, outcome=lambda job_id: "cached"):
    """pipeline.build_job as far as kto build sees it: job.build filled, a failed build
    recorded in the job, other faults raised as KtoError; build.log in ``out``."""
    def build_job(jcfg, src, series, arch, job, out, progress):
        calls.append((job.id, jcfg.arches, series))
        out.mkdir(parents=True, exist_ok=True)
        what = outcome(job.id)
        if what == "error":
            raise KtoError("patch 1/1 \"x\" does not apply: hunk 1 of mm/a.c")
        key = f"{len(calls):020d}"
        (out / "build.log").write_text(f"log of {job.id}\n")
        if what == "failed":
            job.build = {"status": "failed", "key": key, "seconds": 3.0,
                         "error": "mm/a.c:1:2: error: 'x' undeclared\nmake: *** Error 2"}
            job.outcome, job.error = "build-failed", job.build["error"]
            return None
        job.build = {"status": what, "key": key, "seconds": 0.1, "error": ""}
        return SimpleNamespace(job=job)
    return build_job


def kto(project, *argv):
    return cli.main(["build", "nightly", "--runs", str(project / "runs.yaml"), *argv])


def table_lines(text):
    return [l for l in text.splitlines() if l and not l.startswith(("[", " ", "kto build"))]


def test_every_job_once_in_plan_order_one_line_each(project, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pipeline, "build_job", fake_build_job(
        calls, lambda i: "ok" if "arm64" in i else "cached"))
    assert kto(project) == 0
    from orchestrator import config
    jobs = plan.expand(config.load(project / "runs.yaml")["nightly"])
    assert [c[0] for c in calls] == [j.id for j in jobs]
    for jid, arches, series in calls:        # each job narrowed to its arch and series
        assert arches == [jid.split(".")[0].split("+")[0]]
        assert series == ("series:a.mbox" if "+" in jid else None)
    out = capsys.readouterr().out
    rows = [l.split() for l in table_lines(out)]
    assert [r[0] for r in rows] == [j.id for j in jobs]
    for r in rows:
        assert r[1] == ("built" if "arm64" in r[0] else "cached")
        assert len(r[2]) == 20 and r[3].endswith("s") and float(r[3][:-1]) >= 0
    assert f"kto build nightly: {len(jobs)} job(s), " in out


def test_job_shard_and_arch_select_what_kto_run_would(project, monkeypatch, capsys):
    from orchestrator import config
    cfg = config.load(project / "runs.yaml")["nightly"]
    calls = []
    monkeypatch.setattr(pipeline, "build_job", fake_build_job(calls))
    assert kto(project, "--shard", "2/3", "-q") == 0
    assert [c[0] for c in calls] == [j.id for j in plan.shard(plan.expand(cfg), 2, 3)]
    calls.clear()
    assert kto(project, "--job", "arm64.kfence", "--job", "x86_64") == 0
    assert [c[0] for c in calls] == ["arm64.kfence", "x86_64"]
    calls.clear()
    assert kto(project, "--arch", "riscv64") == 0
    assert {c[0].split(".")[0].split("+")[0] for c in calls} == {"riscv64"}
    assert len(calls) == 4


def test_failed_build_is_exit_1_with_its_errors_and_the_rest_still_built(
        project, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pipeline, "build_job", fake_build_job(
        calls, lambda i: "failed" if i == "arm64+examples-a" else "cached"))
    assert kto(project, "-q", "--logs", str(project / "logs")) == 1
    assert len(calls) == 12
    out = capsys.readouterr().out
    lines = out.splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith("arm64+examples-a "))
    assert lines[i].split()[1] == "failed"
    assert lines[i + 1] == "    mm/a.c:1:2: error: 'x' undeclared"
    assert lines[i + 3] == f"    log: {project / 'logs' / 'arm64+examples-a' / 'build.log'}"
    assert (project / "logs" / "arm64+examples-a" / "build.log").read_text() == \
        "log of arm64+examples-a\n"
    assert (project / "logs" / "x86_64" / "build.log").exists()
    assert "1 failed" in out.splitlines()[-1]
    assert "Traceback" not in out


def test_other_fault_of_a_job_is_error_exit_2_and_no_files_without_logs(
        project, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(pipeline, "build_job", fake_build_job(
        calls, lambda i: {"x86_64+examples-a": "error", "arm64": "failed"}.get(i, "ok")))
    monkeypatch.chdir(project)
    before = sorted(p.name for p in project.iterdir())
    assert kto(project) == 2
    assert len(calls) == 12
    out = capsys.readouterr().out
    row = next(l for l in out.splitlines() if l.startswith("x86_64+examples-a "))
    assert row.split()[1:3] == ["error", "-"]
    assert "    patch 1/1 \"x\" does not apply: hunk 1 of mm/a.c" in out
    assert "log:" not in out              # no --logs: the logs went with a temporary dir
    assert sorted(p.name for p in project.iterdir()) == before


@pytest.mark.parametrize("argv,msg", [
    (["--arch", "s390"], "has no arch 's390'"),
    (["--job", "nope"], "no job 'nope'"),
    (["--shard", "4/3"], "I must be between 1 and N"),
    (["--shard", "x"], "expected I/N"),
])
def test_bad_selection_is_one_line_exit_2_before_any_build(project, monkeypatch, capsys,
                                                           argv, msg):
    monkeypatch.setattr(pipeline, "build_job", lambda *a: pytest.fail("built"))
    assert kto(project, *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err and err.startswith("kto: error:")


def test_unknown_run_and_unknown_options(project, monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "build_job", lambda *a: pytest.fail("built"))
    assert cli.main(["build", "nope", "--runs", str(project / "runs.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run named 'nope'" in err
    for bad in (["--guests", "2"], ["--keep"], ["--results", "x"]):   # kto run's, not here
        with pytest.raises(SystemExit) as e:
            kto(project, *bad)
        assert e.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_parser_defaults_and_help():
    args = cli.build_parser().parse_args(["build"])
    assert args.name == "default" and args.func is build_cmd.main
    assert args.arch is None and args.job is None and args.shard is None and args.logs is None
    assert cli.build_parser().parse_args(["build", "x", "-q"]).verbosity == 0
    out = subprocess.run([sys.executable, "-m", "orchestrator", "build", "--help"],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0
    for opt in ("--runs", "--arch", "--job", "--shard", "--source", "--logs", "-q"):
        assert opt in out.stdout
    assert "--guests" not in out.stdout


def test_completion_knows_the_command_and_its_options():
    from orchestrator.commands.complete import candidates
    assert "build" in candidates(["kto", "bu"], 1)
    assert {"--job", "--shard", "--logs"} <= set(candidates(["kto", "build", "--"], 2))


def test_table_and_exit_code():
    rows = [dict(id="x86_64", status="cached", key="k" * 20, seconds=0.4, error="", log=""),
            dict(id="arm64.kfence", status="failed", key="f" * 20, seconds=61.0,
                 error="a: error: b\n\nmake: *** x", log="")]
    assert build_cmd.table(rows) == [
        f"x86_64        cached  {'k' * 20}  0.4s",
        f"arm64.kfence  failed  {'f' * 20}  61.0s",
        "    a: error: b", "    make: *** x"]
    assert build_cmd.exit_code(rows) == 1
    assert build_cmd.exit_code(rows[:1]) == 0 and build_cmd.exit_code([]) == 0
    assert build_cmd.exit_code(rows + [dict(rows[0], status="error")]) == 2


@pytest.mark.slow
def test_warm_store_default_run_is_a_store_hit(tmp_path):
    """kto build default against the real cache with the kernel already stored (built
    here first when it is not: on a cold cache this is make test's first default kernel)
    is a store hit in seconds: no make runs."""
    from orchestrator import arch, config, toolchain
    from tests.kernels import built_kernel
    cfg = config.load(REPO / "runs.yaml")["default"]
    built_kernel("default", "x86_64")
    src = source.resolve(cfg.source, lambda m: None)
    a = arch.get("x86_64")
    stored = pipeline._stored_stock_build(cfg, src, a, toolchain.for_arch(a), any(
        pipeline.workload.load(n).kind == "selftest" for n in cfg.workloads))
    assert stored is not None
    out = subprocess.run([sys.executable, "-m", "orchestrator", "build", "default", "--runs",
                          str(REPO / "runs.yaml"), "--logs", str(tmp_path / "logs")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    row = next(l for l in out.stdout.splitlines() if l.startswith("x86_64 "))
    assert row.split()[1:3] == ["cached", stored[0].key]
    assert float(row.split()[3][:-1]) < 120
    assert "objects" not in out.stdout           # no make ran
    assert (tmp_path / "logs" / "x86_64" / "build-metadata.json").exists()
