"""Hostile runs.yaml, workload, known-issues and kconfig fragment files (issue 15, points 1,
4, 8, 11): each is one line naming the file (and line), exit 2, no traceback, nothing
written outside the results root, and in bounded time and memory."""
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator import config, kconfig, known_issues, schema, workload
from orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    shutil.copytree(REPO / "kconfigs", tmp_path / "kconfigs")
    (tmp_path / "patches" / "s").mkdir(parents=True)
    (tmp_path / "patches" / "s" / "a.mbox").write_text("x")
    return tmp_path


def runs_file(project, body: str, name="runs.yaml") -> Path:
    p = project / name
    p.write_text(textwrap.dedent(body))
    return p


def kto(*argv, cwd, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "orchestrator", *argv], cwd=cwd,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def one_line_error(cp, *needles):
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode == 2, (cp.returncode, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


# ---------------------------------------------------------------- 1: run names are plain names

@pytest.mark.parametrize("name", ["../../x", "/tmp/kto-abs", "..", ".hidden", "a/b", "a b"])
def test_run_name_that_is_a_path_is_refused(project, name, tmp_path):
    f = runs_file(project, f"""\
        version: 1
        runs:
          "{name}":
            arches: [x86_64]
        """)
    with pytest.raises(ConfigError) as e:
        config.load(f)
    assert str(e.value).startswith(f"{f}:3: runs.{name}: ") and "plain directory name" in \
        str(e.value)
    # kto run stops at the name: nothing is made anywhere (the results root stays empty).
    cp = kto("run", name, "--runs", str(f), "--results", str(tmp_path / "res"), cwd=project,
             env={"KTO_CACHE": str(tmp_path / "cache")})
    one_line_error(cp, "plain directory name")
    assert not (tmp_path / "res").exists() and not Path("/tmp/kto-abs").exists()


def test_results_dir_refuses_a_path_name(tmp_path):
    from orchestrator.results import new_run_dir
    from orchestrator.errors import KtoError
    with pytest.raises(KtoError):
        new_run_dir(tmp_path / "res", "../escape")
    assert not (tmp_path / "escape").exists() and not list(tmp_path.glob("escape*"))


# ---------------------------------------------------------------- 4: encodings, complex keys

LATIN1 = "version: 1\nruns:\n  default:\n    description: caf\xe9\n    arches: [x86_64]\n"


def test_non_utf8_runs_yaml(project):
    f = project / "runs.yaml"
    f.write_bytes(LATIN1.encode("latin-1"))
    with pytest.raises(ConfigError, match=r":4: runs.yaml is not UTF-8|:4: file is not UTF-8"):
        config.load(f)
    one_line_error(kto("plan", "default", "--runs", str(f), cwd=project), f"{f}:4:", "UTF-8")


def test_non_utf8_workload_known_issues_and_fragment(tmp_path):
    wl = tmp_path / "vmalloc.yaml"
    wl.write_bytes((REPO / "workloads" / "vmalloc.yaml").read_bytes() + b"# \xff\xfe\n")
    with pytest.raises(ConfigError, match=rf"^{wl}:\d+: .*not UTF-8"):
        workload.load_file(wl)
    ki = tmp_path / "known-issues.yaml"
    ki.write_bytes(b"- title: x\n  reason: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{ki}:2: .*not UTF-8"):
        known_issues.load(ki)
    frag = tmp_path / "x.config"
    frag.write_bytes(b"CONFIG_A=y\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{frag}:2: kconfig fragment is not UTF-8"):
        kconfig.parse_fragment(frag)


@pytest.mark.parametrize("text, line", [
    ("version: 1\nruns:\n  ? [a, b]\n  : {arches: [x86_64]}\n", 3),
    ("version: 1\nruns:\n  default:\n    ? {x: 1}\n    : 2\n    arches: [x86_64]\n", 4),
    ("? [version]\n: 1\nruns: {}\n", 1),
])
def test_complex_keys(project, text, line):
    f = project / "runs.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{f}:{line}: .*a key must be a plain name"):
        config.load(f)
    one_line_error(kto("plan", "default", "--runs", str(f), cwd=project), "plain name")


def test_complex_key_in_a_workload_setup_step(tmp_path):
    text = (REPO / "workloads" / "hugetlb.yaml").read_text()
    assert "setup: [{hugepages_mb: 256}]" in text
    wl = tmp_path / "hugetlb.yaml"
    wl.write_text(text.replace("setup: [{hugepages_mb: 256}]", "setup: [{? [a]: 1}]", 1))
    with pytest.raises(ConfigError, match="a key must be a plain name"):
        workload.load_file(wl)


# ---------------------------------------------------------------- 8: YAML cost caps

def laughs(levels=12, width=9) -> str:
    """The 'billion laughs': each alias level multiplies the nodes by ``width``."""
    lines = ["version: 1", "x0: &a0 [lol]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append("runs: {default: {arches: [x86_64], description: *a%d}}" % (levels - 1))
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast(project):
    f = project / "runs.yaml"
    f.write_text(laughs())
    assert f.stat().st_size < 2000
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"more than \d+ YAML nodes \(aliases expanded\)"):
        config.load(f)
    assert time.monotonic() - t0 < 5


def test_big_file_and_dev_zero(project):
    f = project / "runs.yaml"
    f.write_text("version: 1\nruns:\n  default:\n    arches: [x86_64]\n" +
                 "# padding\n" * (schema.MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match=r"larger than 256 KiB"):
        config.load(f)
    # Just under the cap, as many nodes as fit: refused by the node count, not parsed on.
    f.write_text("version: 1\nruns:\n  d:\n    arches: [" +
                 "a," * (schema.MAX_BYTES // 2 - 40) + "]\n")
    assert f.stat().st_size <= schema.MAX_BYTES
    with pytest.raises(ConfigError, match=rf"^{f}:4: more than \d+ YAML nodes"):
        config.load(f)
    cp = kto("plan", "default", "--runs", "/dev/zero", cwd=project, timeout=30)
    one_line_error(cp, "/dev/zero", "larger than")
    cp = kto("plan", "default", "--runs", str(project), cwd=project)   # a directory
    one_line_error(cp, str(project), "cannot read")


def test_deep_nesting(project):
    f = project / "runs.yaml"
    f.write_text("version: 1\nruns: {default: {arches: [x86_64], description: "
                 + "[" * 5000 + "]" * 5000 + "}}\n")
    one_line_error(kto("plan", "default", "--runs", str(f), cwd=project), str(f))


def test_scalars_are_not_reparsed(project, monkeypatch):
    """Each scalar is constructed from its node: no serialize + re-parse per scalar (that
    cost ~0.2 ms each on a busy machine: 20000 list items took seconds)."""
    import yaml
    items = ", ".join(["x86_64"] * 20000)
    node = yaml.compose(f"version: 1\nruns:\n  default:\n    arches: [{items}]\n",
                        Loader=yaml.SafeLoader)

    def no(*a, **k):
        raise AssertionError("a scalar was re-parsed")

    monkeypatch.setattr(yaml, "serialize", no)
    monkeypatch.setattr(yaml, "safe_load", no)
    data = config._file_schema().check(node, "", {})
    assert len(data["runs"]["default"]["arches"]) == 20000


# ---------------------------------------------------------------- 11: validation gaps

BASE = """\
version: 1
runs:
  default:
    arches: [x86_64]
"""


@pytest.mark.parametrize("extra, needle", [
    ("    kconfig: {fragments: [../../../../etc/passwd]}\n", "must be a path inside kconfigs/"),
    ("    kconfig: {fragments: [/etc/passwd]}\n", "must be a path inside kconfigs/"),
    ("    patches: /etc\n", "must be a path inside patches/"),
    ("    series: [../../etc]\n", "must be a path inside patches/"),
    ("    source: {tarball: /nonexistent/linux.tar.xz}\n", "tarball /nonexistent/linux.tar.xz"),
    ("    source: {git: nogit}\n", "does not exist"),
])
def test_paths_that_escape_or_do_not_exist_fail_at_plan(project, extra, needle):
    f = runs_file(project, BASE + extra)
    with pytest.raises(ConfigError) as e:
        config.load(f)
    assert str(e.value).startswith(f"{f}:5: runs.default."), str(e.value)
    assert needle in str(e.value)
    one_line_error(kto("plan", "default", "--runs", str(f), cwd=project), f"{f}:5:", needle)


def test_symlink_out_of_kconfigs_is_refused(project):
    (project / "kconfigs" / "evil.config").symlink_to("/etc/hostname")
    f = runs_file(project, BASE + "    kconfig: {fragments: [evil.config]}\n")
    with pytest.raises(ConfigError, match="leads outside kconfigs/"):
        config.load(f)


def test_unknown_git_ref_fails_at_plan(project):
    t = project / "linux"
    t.mkdir()
    for argv in (["init", "-q"], ["-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                                   "--allow-empty", "-m", "base"]):
        subprocess.run(["git", "-C", str(t), *argv], check=True)
    f = runs_file(project, BASE + "    source: {git: linux, ref: no-such-branch}\n")
    with pytest.raises(ConfigError, match=rf"^{f}:5: runs.default.source.ref: unknown ref "
                                          r"'no-such-branch'"):
        config.load(f)
    f = runs_file(project, BASE + "    source: {git: linux, ref: HEAD}\n")
    assert config.load(f)["default"].source.ref == "HEAD"
    f = runs_file(project, BASE + "    source: {git: kconfigs}\n")     # a plain directory
    with pytest.raises(ConfigError, match="is not a git repository"):
        config.load(f)


def test_broken_unrelated_workload_file_does_not_matter(tmp_path, monkeypatch):
    """A run uses only its own workloads' files: a broken file beside them that the run
    does not name fails nothing (it used to fail every run that built selftests, after
    its kernel build). pipeline.build_job runs for real up to the selftests, on a tiny git
    tree with a stand-in for the kernel build."""
    from orchestrator import build, pipeline, selftests, source
    from orchestrator.arch import get as get_arch
    from orchestrator.errors import KtoError
    from orchestrator.results import JobResult
    d = tmp_path / "workloads"
    shutil.copytree(REPO / "workloads", d)
    (d / "broken.yaml").write_bytes(b"name: broken\nkind: [\n")
    monkeypatch.setattr(workload, "workloads_dir", lambda: d)
    files = selftests.wanted_files(["hugetlb", "userfaultfd"], d)
    assert files and all(not f.startswith("broken") for f in files)
    with pytest.raises(ConfigError, match="broken.yaml"):
        selftests.wanted_files(None, d)      # all of them: the broken one is named

    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    t = tmp_path / "linux"
    t.mkdir()
    (t / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n")
    for argv in (["init", "-q"], ["add", "."], ["-c", "user.name=a", "-c", "user.email=a@b",
                                                "commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(t), *argv], check=True)
    src = source.resolve(source.SourceSpec(tarball=None, git=t))
    monkeypatch.setattr(build, "build", lambda inp, progress=None: build.BuildResult(
        "ok", "k", tmp_path, 0.0, None))
    cfg = config.RunConfig(name="r", source=src, arches=["x86_64"], fragments=[],
                           workloads=["hugetlb"])
    # The tiny tree has no selftests: the build stops there, past the workload files.
    with pytest.raises(KtoError) as e:
        pipeline.build_job(cfg, src, None, get_arch("x86_64"), JobResult(arch="x86_64"),
                           tmp_path / "out", lambda m: None)
    assert "broken.yaml" not in str(e.value) and "does not exist in the kernel tree" in \
        str(e.value), str(e.value)
