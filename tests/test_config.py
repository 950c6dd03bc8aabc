"""runs.yaml schema v1: good files load; every kind of bad input is one line naming the
file, the line and the problem, and `kto` exits 2 without a traceback."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator import config
from orchestrator.errors import ConfigError


@pytest.fixture
def project(tmp_path, repo_root):
    """A scratch project dir with the real kconfigs/ and a patches/ dir."""
    shutil.copytree(repo_root / "kconfigs", tmp_path / "kconfigs")
    (tmp_path / "patches" / "s").mkdir(parents=True)
    (tmp_path / "patches" / "s" / "a.mbox").write_text("x")
    return tmp_path


def write(project, text):
    p = project / "runs.yaml"
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """\
version: 1
runs:
  nightly:
    arches: [x86_64, arm64]
    kconfig:
      base: tinyconfig
      fragments: [base.config, kasan.config]
    patches: s/a.mbox
    workloads: [vmalloc]
    presets: {vmalloc: smoke}
    timeouts: {build: 100, boot: 50}
    vm: {memory_mb: 1024, accel: tcg}
"""


def test_good_file_loads(project):
    runs = config.load(write(project, GOOD))
    r = runs["nightly"]
    assert r.arches == ["x86_64", "arm64"]
    assert [p.name for p in r.fragments_for("arm64")] == ["base.config", "arm64.config",
                                                           "kasan.config"]
    assert r.patches == project / "patches" / "s" / "a.mbox"
    assert r.presets == {"vmalloc": "smoke"}
    assert r.timeouts.build == 100 and r.timeouts.workload == 900
    assert r.vm.memory_mb == 1024 and r.vm.accel == "tcg"
    assert r.source.tarball == Path("/usr/src/linux-source-6.12.tar.xz")


def test_repo_runs_yaml_loads(repo_root):
    runs = config.load(repo_root / "runs.yaml")
    assert "default" in runs and runs["default"].workloads == ["vmalloc"]


@pytest.mark.parametrize("edit, line, needle", [
    (("    arches: [x86_64, arm64]", "    arches: [x86_64, mips]"), 4,
     "runs.nightly.arches[1]: unknown arch 'mips' (known: x86_64, arm64, riscv64)"),
    (("    workloads: [vmalloc]", "    workloads: [vmalloc, fio]"), 9,
     "runs.nightly.workloads[1]: unknown workload 'fio'"),
    (("    arches: [x86_64, arm64]", "    arches: x86_64"), 4,
     "runs.nightly.arches: expected a list, got string 'x86_64'"),
    (("    timeouts: {build: 100, boot: 50}", "    timeouts: {build: soon, boot: 50}"), 11,
     "runs.nightly.timeouts.build: expected an integer, got string 'soon'"),
    (("    patches: s/a.mbox", "    patchs: s/a.mbox"), 8,
     "runs.nightly.patchs: unknown key 'patchs'"),
    (("    patches: s/a.mbox", "    patches: s/missing.mbox"), 8,
     "runs.nightly.patches: no such series"),
    (("      fragments: [base.config, kasan.config]",
      "      fragments: [base.config, nope.config]"), 7,
     "runs.nightly.kconfig.fragments[1]: no such fragment"),
    (("      fragments: [base.config, kasan.config]",
      "      fragments: [base.config, kasan.config]\n      build_dir: ../x"), 8,
     "runs.nightly.kconfig.build_dir: '../x' must be a plain directory name"),
    (("    presets: {vmalloc: smoke}", "    presets: {vmalloc: turbo}"), 10,
     "runs.nightly.presets.vmalloc: unknown preset 'turbo'"),
    (("    vm: {memory_mb: 1024, accel: tcg}", "    vm: {memory_mb: 1024, accel: xen}"), 12,
     "runs.nightly.vm.accel: unknown accel 'xen'"),
    (("version: 1", "version: 2"), 1, "unsupported schema version 2"),
    (("    arches: [x86_64, arm64]", "    arches: [x86_64, arm64"), None, "invalid YAML"),
])
def test_bad_input_names_file_line_and_problem(project, edit, line, needle):
    path = write(project, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}:" if line else f"{path}:"), msg
    assert needle in msg, msg


def test_missing_required_key(project):
    path = write(project, "version: 1\nruns:\n  r:\n    workloads: [vmalloc]\n")
    with pytest.raises(ConfigError, match=r":4: runs.r: missing required key 'arches'"):
        config.load(path)


def test_cli_exit_2_one_line_no_traceback(project, repo_root):
    path = write(project, GOOD.replace("[x86_64, arm64]", "[x86_64, mips]"))
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "run", "nightly", "--runs",
                         str(path)], capture_output=True, text=True, cwd=repo_root)
    assert cp.returncode == 2
    assert cp.stderr.count("\n") == 1 and "Traceback" not in cp.stderr
    assert f"{path}:4:" in cp.stderr and "unknown arch 'mips'" in cp.stderr
