"""The pipelines kto ci prints, checked by the real consumers' validators (GitLab CI and
GitHub workflow JSON schemas via check-jsonschema, actionlint) and for what makes them
work night after night. The GitLab pipeline is run for real by tests/test_ci_local.py
(make test-ci)."""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator import config, plan
from orchestrator.commands import ci

BIN = Path(sys.executable).parent


@pytest.fixture
def nightly(repo_root):
    return config.load(repo_root / "runs.yaml")["nightly"]


def _shard_run_line(data, system):
    if system == "gitlab":
        lines = data["kto-shard"]["script"]
    else:
        lines = [s.get("run", "") for s in data["jobs"]["shard"]["steps"]]
    (line,) = [l for l in lines if l.startswith(".venv/bin/kto run ")]
    return line


@pytest.mark.parametrize("argv", [[], ["--require-kvm", "--runner", "kvm"],
                                  ["--image", "none"], ["--shards", "1"]])
def test_gitlab_file_passes_the_gitlab_schema(repo_root, tmp_path, argv):
    out = subprocess.run([sys.executable, "-m", "orchestrator", "ci", "gitlab", "nightly",
                          "--shards", "3", *argv], capture_output=True, text=True,
                         cwd=repo_root, check=True).stdout
    f = tmp_path / ".gitlab-ci.yml"
    f.write_text(out)
    v = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                        f], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    # and the schema really rejects a broken file (the check can fail)
    data = yaml.safe_load(out)
    data["kto-merge"]["cache"]["when"] = "sometimes"
    f.write_text(yaml.safe_dump(data))
    v = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci",
                        f], capture_output=True, text=True)
    assert v.returncode == 1


@pytest.mark.parametrize("argv", [[], ["--require-kvm", "--runner", "kvm"]])
def test_github_workflow_passes_schema_and_actionlint(repo_root, tmp_path, argv):
    out = subprocess.run([sys.executable, "-m", "orchestrator", "ci", "github", "nightly",
                          "--shards", "3", *argv], capture_output=True, text=True,
                         cwd=repo_root, check=True).stdout
    wf = tmp_path / ".github" / "workflows" / "kto.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(out)
    # a custom self-hosted label is declared to actionlint as a project does
    # (docs/nightly.md); without it actionlint rejects the label
    (tmp_path / ".github" / "actionlint.yaml").write_text(
        "self-hosted-runner:\n  labels: [kvm]\n")
    v = subprocess.run([BIN / "check-jsonschema", "--builtin-schema",
                        "vendor.github-workflows", wf], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    lint = subprocess.run([BIN / "actionlint", "-no-color", "-config-file",
                           tmp_path / ".github" / "actionlint.yaml", str(wf)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # actionlint does flag deprecated action versions (what kto printed before)
    wf.write_text(out.replace(ci.CHECKOUT["uses"], "actions/checkout@v4"))
    lint = subprocess.run([BIN / "actionlint", "-no-color", str(wf)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert lint.returncode == 1 and "deprecated" in lint.stdout


def test_gitlab_nightly_properties(nightly):
    data = yaml.safe_load(ci.render("gitlab", nightly, "runs.yaml", 3, runner="kvm",
                                    require_kvm=True))
    shard, merge = data["kto-shard"], data["kto-merge"]
    assert data["default"]["image"] == "debian:12"
    assert "apt-get install" in data["default"]["before_script"][0]
    # scheduled (and manual) pipelines only
    assert {r["if"] for r in data["workflow"]["rules"]} == {
        '$CI_PIPELINE_SOURCE == "schedule"', '$CI_PIPELINE_SOURCE == "web"',
        '$CI_PIPELINE_SOURCE == "api"'}
    # a red night's history is kept
    assert merge["cache"]["when"] == "always" and merge["when"] == "always"
    # JUnit once, from the merged results
    assert "reports" not in shard["artifacts"]
    assert merge["artifacts"]["reports"]["junit"] == "merged/junit.xml"
    assert shard["tags"] == merge["tags"] == ["kvm"]
    # KVM: loud failure before the run, and after it if guests fell back to TCG
    assert shard["script"][1] == ci.KVM_PRECHECK
    assert shard["script"][-1].endswith("--check-kvm results/shard-${CI_NODE_INDEX}")
    # the CI timeout covers what kto's own timeouts allow: 2 jobs per shard here
    t = nightly.timeouts
    need = 2 * (t.build + t.boot + 3 * t.workload) + ci.SETUP_SECONDS
    h, _, m = shard["timeout"].partition("h")
    assert need <= (int(h) * 60 + int(m.strip().rstrip("m") or 0)) * 60 < need + 600
    # nothing sets KTO_CACHE: the runner's own (persistent) cache is used
    assert "KTO_CACHE" not in yaml.safe_dump(data)


def test_github_nightly_properties(nightly):
    data = yaml.safe_load(ci.render("github", nightly, "runs.yaml", 3, runner="kvm",
                                    require_kvm=True))
    jobs = data["jobs"]
    assert jobs["shard"]["runs-on"] == jobs["merge"]["runs-on"] == ["self-hosted", "kvm"]
    assert jobs["shard"]["timeout-minutes"] == ci.shard_timeout_minutes(nightly, 3)
    assert data["concurrency"]["group"] == "kto-nightly"
    save = [s for s in jobs["merge"]["steps"] if s.get("uses") == ci.CACHE_SAVE]
    assert save and save[0]["if"] == "always()"
    names = [s.get("name") for s in jobs["shard"]["steps"]]
    assert "require KVM" in names and "guests ran under KVM" in names
    assert yaml.safe_load(ci.render("github", nightly, "runs.yaml", 1))["jobs"]["shard"][
        "runs-on"] == ["self-hosted"]


@pytest.mark.parametrize("system", ["gitlab", "github"])
def test_shards_cover_every_job_once(nightly, system):
    for n in (1, 2, 3, 4, 7):
        data = yaml.safe_load(ci.render(system, nightly, "runs.yaml", n))
        line = _shard_run_line(data, system)
        jobs, ran = plan.expand(nightly), []
        for i in range(1, n + 1):
            text = (line.replace("${CI_NODE_INDEX}/${CI_NODE_TOTAL}", f"{i}/{n}")
                    .replace("${{ matrix.shard }}", str(i)))
            argv = shlex.split(text.split(" || ")[0])
            ran += [j.id for j in plan.shard(jobs, *plan.parse_shard(
                argv[argv.index("--shard") + 1]))]
        assert sorted(ran) == sorted(j.id for j in jobs), (system, n)


def test_check_kvm(tmp_path, repo_root):
    """--check-kvm fails on a shard whose native-arch guest ran under TCG, not on
    cross-arch guests (always TCG) or KVM ones."""
    import platform
    data_dir = repo_root / "tests" / "data" / "runs"
    native = {"x86_64": "mm-vmemmap-x86_64", "aarch64": "selftest-arm64"}.get(
        platform.machine())
    shutil.copytree(data_dir / "matrix-quick-riscv64", tmp_path / "cross" / "r")
    assert ci.check_kvm(tmp_path / "cross") == 0
    if native is None:
        pytest.skip("no recorded run of this machine's arch")
    import json
    src = data_dir / "nightly-night1"
    shutil.copytree(src, tmp_path / "native" / "r")
    s = json.loads((src / "summary.json").read_text())
    accels = {j["arch"]: j["boot"].get("accel") for j in s["jobs"]}
    assert accels.get("x86_64") == "tcg"
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "orchestrator.commands.ci", "--check-kvm",
                        tmp_path / "native"], capture_output=True, text=True, env=env,
                       cwd=repo_root)
    assert p.returncode == 2 and "ran under TCG" in p.stderr and "x86_64+selftest" in p.stderr
    p = tmp_path / "native" / "r" / "summary.json"
    p.write_text(p.read_text().replace('"accel": "tcg"', '"accel": "kvm"'))
    assert ci.check_kvm(tmp_path / "native") == 0
