"""The developer's command line, end to end through the kto executable, run from a
directory that is not kto's checkout (a stranger's cwd): runs.yaml lookup, lone patches
of a series, --source trees, build progress, --version/-v/-q/--json, completion.
Small real git trees stand in for the kernel (own KTO_CACHE); the real-kernel parts are
in test_shell_e2e.py."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import buildprogress, config
from orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
KTO = [sys.executable, "-m", "orchestrator"]
SUBJECT1 = "mm/hugetlb: bump f5 (1)"


def kto(*argv, cwd, env=None, **kw):
    e = {k: v for k, v in os.environ.items() if k != "KTO_RUNS"}
    e.update(env or {})
    return subprocess.run([*KTO, *map(str, argv)], capture_output=True, text=True, cwd=cwd,
                          env=e, **kw)


def sh(cwd, *argv):
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory with no runs.yaml, kconfigs/ or patches/ in it."""
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def tree(make_tree, tmp_path):
    """A small kernel-like git tree and a 6-patch series made from it."""
    t = make_tree("mm/hugetlb.c",
                  "".join(f"int f{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(60)))
    base = sh(t, "git", "rev-parse", "HEAD").strip()
    for n, i in enumerate((5, 15, 25, 35, 45, 55), 1):
        f = t / "mm" / "hugetlb.c"
        f.write_text(f.read_text().replace(f"return {i};", f"return {i} + 1;"))
        sh(t, "git", "commit", "-qam", f"mm/hugetlb: bump f{i} ({n})")
    out = tmp_path / "thread"
    sh(t, "git", "format-patch", "-q", "--cover-letter", "-o", str(out), f"{base}..HEAD")
    return t, base, out


# -- 1. runs.yaml from any directory --

def test_commands_find_the_projects_runs_yaml_from_another_directory(elsewhere):
    cp = kto("plan", "default", cwd=elsewhere)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("run default: 1 job(s)")
    cp = kto("plan", "nope", cwd=elsewhere)
    assert cp.returncode == 2 and cp.stderr.count("\n") == 1
    assert f"{REPO / 'runs.yaml'}: no run named 'nope'" in cp.stderr


def test_kto_runs_names_a_project_of_ones_own(elsewhere, tmp_path):
    mine = tmp_path / "mine"
    (mine / "kconfigs").mkdir(parents=True)
    for f in (REPO / "kconfigs").iterdir():
        shutil.copy(f, mine / "kconfigs")
    (mine / "runs.yaml").write_text("version: 1\nruns:\n  solo:\n    arches: [arm64]\n")
    cp = kto("plan", "solo", cwd=elsewhere, env={"KTO_RUNS": str(mine / "runs.yaml")})
    assert cp.returncode == 0, cp.stderr
    assert "arch=arm64" in cp.stdout
    # --runs wins over KTO_RUNS; a missing file is one line, exit 2.
    cp = kto("plan", "solo", "--runs", tmp_path / "none.yaml", cwd=elsewhere,
             env={"KTO_RUNS": str(mine / "runs.yaml")})
    assert cp.returncode == 2 and "none.yaml" in cp.stderr and "Traceback" not in cp.stderr


def test_apply_needs_no_runs_yaml(monkeypatch, tmp_path):
    """Without any runs.yaml the base of kto apply is the default source (the tarball)."""
    from orchestrator import source
    from orchestrator.commands import apply
    monkeypatch.delenv("KTO_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "project_dir", lambda: tmp_path / "no-project")
    seen = []
    monkeypatch.setattr(source, "resolve", lambda spec: seen.append(spec) or
                        type("T", (), {"commit": "c0ffee"})())
    args = kto_args("apply", "x.patch")
    assert apply.resolve_base(args) == "c0ffee"
    assert seen == [source.SourceSpec()]
    with pytest.raises(ConfigError, match="no runs.yaml: none in the current directory"):
        config.find_runs()


def kto_args(*argv):
    from orchestrator.cli import build_parser
    return build_parser().parse_args(list(argv))


# -- 2. a lone patch of a series --

def test_lone_patch_refused_with_a_way_on_then_applied_with_selection(tree, elsewhere,
                                                                      tmp_path):
    t, base, thread = tree
    env = {"KTO_CACHE": str(tmp_path / "cache")}
    lone = sorted(thread.glob("0001-*.patch"))[0]            # [PATCH 1/6] alone
    cp = kto("apply", lone, "--source", f"{t}@{base}", cwd=elsewhere, env=env)
    assert cp.returncode == 2 and cp.stderr.count("\n") == 1, cp.stderr
    assert "patches 2/6, 3/6, 4/6, 5/6, 6/6 are missing (have 1); to try only what is " \
           "there, give --partial (or --patches 1)" in cp.stderr
    for flag in (["--partial"], ["--patches", "1"]):
        cp = kto("apply", lone, "--source", f"{t}@{base}", *flag, cwd=elsewhere, env=env)
        assert cp.returncode == 0, cp.stderr
        assert f'patch 1/6 "{SUBJECT1}"' in cp.stdout and "applied 1 patch(es)" in cp.stdout
    # --patches 1,3-4 of the whole thread (cover letter included) in that order.
    cp = kto("apply", thread, "--source", f"{t}@{base}", "--patches", "1,3-4", cwd=elsewhere,
             env=env)
    assert cp.returncode == 0, cp.stderr
    assert [l.split(" ", 1)[1][:9] for l in cp.stdout.splitlines()[:3]] == \
        ["patch 1/6", "patch 3/6", "patch 4/6"]


def test_lone_patch_that_does_not_apply_names_file_and_hunk(tree, elsewhere, tmp_path):
    """git am runs and fails: the error names the patch, the file and the hunk."""
    t, base, thread = tree
    sh(t, "git", "checkout", "-q", "-b", "moved", base)
    f = t / "mm" / "hugetlb.c"
    f.write_text(f.read_text().replace("return 5;", "return 500;"))
    sh(t, "git", "commit", "-qam", "conflicting base")
    lone = sorted(thread.glob("0001-*.patch"))[0]
    cp = kto("apply", lone, "--partial", "--source", f"{t}@moved", cwd=elsewhere,
             env={"KTO_CACHE": str(tmp_path / "cache")})
    assert cp.returncode == 2 and cp.stderr.count("\n") == 1 and "Traceback" not in cp.stderr
    assert cp.stderr.startswith(f'kto: error: patch 1/6 "{SUBJECT1}" does not apply: '
                                "hunk 1 of mm/hugetlb.c (@@ -"), cp.stderr


def test_bad_selection_is_one_line(tree, elsewhere):
    t, base, thread = tree
    for flag, msg in ((["--patches", "7"], "--patches 7: patch 7/6 is not in it"),
                      (["--patches", "2-1"], "'2-1' is not an ascending range")):
        cp = kto("apply", thread, *flag, cwd=elsewhere)
        assert cp.returncode == 2 and msg in cp.stderr and cp.stderr.count("\n") == 1
    cp = kto("apply", thread, "--partial", "--patches", "1", cwd=elsewhere)
    assert cp.returncode == 2 and "not allowed with argument" in cp.stderr


# -- 3. --source PATH[@REV] --

def test_source_dirty_tree_refused_clean_head_and_rev_taken(tree, elsewhere, tmp_path):
    t, base, thread = tree
    env = {"KTO_CACHE": str(tmp_path / "cache")}
    (t / "mm" / "hugetlb.c").write_text("edited\n")
    (t / "untracked.txt").write_text("not part of any commit\n")
    cp = kto("apply", thread, "--source", t, cwd=elsewhere, env=env)
    assert cp.returncode == 2 and cp.stderr.count("\n") == 1
    assert (f"--source {t}: {t} has uncommitted changes (1 file(s): mm/hugetlb.c); kto "
            f"tests commits: commit (or stash) them, or give {t}@REV to test a commit"
            in cp.stderr)
    # The same dirty tree at an explicit commit: that commit is tested.
    cp = kto("apply", thread, "--source", f"{t}@{base}", cwd=elsewhere, env=env)
    assert cp.returncode == 0 and "applied 6 patch(es)" in cp.stdout, cp.stderr
    sh(t, "git", "checkout", "-q", "--", ".")
    cp = kto("apply", thread, "--source", t, cwd=elsewhere, env=env)   # clean HEAD: has them
    assert cp.returncode == 2 and "already in the tree" in cp.stderr
    for bad, msg in ((f"{t}@nope", "no commit 'nope'"), (tmp_path / "none", "not a directory"),
                     (tmp_path, "is not a git tree")):
        cp = kto("apply", thread, "--source", bad, cwd=elsewhere, env=env)
        assert cp.returncode == 2 and msg in cp.stderr and cp.stderr.count("\n") == 1, \
            cp.stderr


def test_source_on_run_check_series_bisect_refuses_dirty_tree_before_building(
        tree, elsewhere, tmp_path):
    t, base, thread = tree
    (t / "mm" / "hugetlb.c").write_text("edited\n")
    env = {"KTO_CACHE": str(tmp_path / "cache")}
    for argv in (["run", "default"], ["check-series", thread, "--run", "default"],
                 ["bisect", thread, "--run", "default"], ["shell", "default"]):
        cp = kto(*argv, "--source", t, "--results", tmp_path / "r", cwd=elsewhere, env=env)
        assert cp.returncode == 2 and "has uncommitted changes" in cp.stderr, (argv, cp.stderr)
    assert not (tmp_path / "cache" / "builds").exists()


# -- 5. build progress --

def test_progress_estimate_record_and_lines(tmp_path):
    d = tmp_path / "build"
    d.mkdir()
    cfg = "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n" + "CONFIG_X=y\n" * 98
    est = buildprogress.estimate(d, cfg)
    assert est.total == round(100 * buildprogress.OBJECTS_PER_OPTION) and not est.incremental
    assert "estimate from the config (100 options)" in est.source
    assert buildprogress.estimate(d, cfg, arch_total=1900).total == 1900
    for i in range(40):
        (d / f"{i}.o").write_text("")
    buildprogress.record(d, 400, 300.0, buildprogress.estimate(d, cfg, arch_total=1900))
    # A finished build directory: the next build is incremental, no made-up percent.
    inc = buildprogress.estimate(d, cfg, arch_total=1900)
    assert inc.incremental and inc.total is None
    assert "the last build here compiled 400 objects in 5m00s" in inc.source
    assert buildprogress.line(inc, 3, 65, "mm/a.o") == \
        "build: 1m05s, 3 objects compiled (incremental), at mm/a.o"
    # Half the objects gone (make clean of a subtree): half the last full build is left.
    for i in range(20):
        (d / f"{i}.o").unlink()
    half = buildprogress.estimate(d, cfg, arch_total=1900)
    assert half.total == 200 and half.source == "the last full build of this build directory"
    assert buildprogress.line(half, 50, 100, "") == \
        "build: 1m40s, 50/200 objects (25%), ETA 5m00s"


FAKE_MAKE = """import sys, time
for i in range(14):
    print(f"  CC      mm/f{i}.o", flush=True)
    time.sleep(0.5)
"""


def _fake_build(tmp_path, stream_tty: bool, term: str) -> str:
    """build._run_make on a fake make, through kto run's Progress on a pty or a pipe."""
    script = tmp_path / "fake_make.py"
    script.write_text(FAKE_MAKE)
    driver = f"""
import sys
from pathlib import Path
from orchestrator import build, buildprogress, verbosity
from orchestrator.commands.run import progress
est = buildprogress.Estimate(14, "test")
progress("x86_64: build: start")          # decides LIVE from the stream and TERM
build._run_make([sys.executable, {str(script)!r}], {{}}, Path({str(tmp_path / 'log')!r}),
                lambda m: progress("x86_64: " + m), est)
progress("x86_64: build ok")
"""
    env = {**os.environ, "TERM": term}
    if not stream_tty:
        return subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=60).stdout
    import pexpect
    child = pexpect.spawn(sys.executable, ["-c", driver], env=env, cwd=str(REPO), timeout=60,
                          encoding="utf-8")
    child.expect(pexpect.EOF)
    return child.before


def test_build_progress_live_on_a_terminal_plain_in_a_pipe_and_on_dumb(tmp_path):
    tty = _fake_build(tmp_path, True, "xterm")
    # Live: the status line is rewritten (every 2 s), with done/total, percent and ETA.
    assert "\r\x1b[K" in tty and "objects (" in tty and "ETA" in tty, tty
    assert tty.rstrip().endswith("x86_64: build ok")
    for out in (_fake_build(tmp_path, False, "xterm"), _fake_build(tmp_path, True, "dumb")):
        assert "\x1b" not in out and "\r\x1b" not in out, repr(out)
        assert out.count("\n") >= 2 and "x86_64: build ok" in out


# -- 6. conventions --

def test_version_verbosity_and_help_for_every_option(elsewhere):
    cp = kto("--version", cwd=elsewhere)
    assert cp.returncode == 0 and cp.stdout.startswith("kto ")
    import argparse
    from orchestrator.cli import build_parser

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sp in a.choices.items():
                    yield from walk(sp, [*path, n])
            elif not isinstance(a, argparse._HelpAction):
                yield path, a
    missing = [(p, a.option_strings or a.dest) for p, a in walk(build_parser(), ["kto"])
               if not a.help]
    assert missing == []
    # -q/-v before or after the subcommand.
    assert kto_args("-q", "plan", "x").verbosity == 0
    assert kto_args("plan", "x", "-v").verbosity == 2
    assert kto_args("plan", "x").verbosity == 1
    for cmd in ("run", "shell", "check-series", "bisect", "apply"):
        text = kto(cmd, "--help", cwd=elsewhere).stdout
        assert "--source" in text and "--runs" in text, cmd


def test_quiet_drops_progress_lines(tmp_path):
    driver = ("from orchestrator import verbosity\nfrom orchestrator.commands.run import "
              "progress\nverbosity.LEVEL = {}\nprogress('x86_64: booted')\n")
    out = [subprocess.run([sys.executable, "-c", driver.format(n)], capture_output=True,
                          text=True, cwd=REPO).stdout for n in (0, 1)]
    assert out[0] == "" and out[1].endswith("x86_64: booted\n")


def test_nightly_json_is_the_verdict_alone_on_stdout(tmp_path, elsewhere):
    runs = REPO / "tests" / "data" / "runs"
    for n, name in enumerate(["matrix-quick-arm64", "selftest-arm64"]):
        shutil.copytree(runs / name, tmp_path / f"n{n}")
    db = tmp_path / "h.sqlite"
    outs = [kto("nightly", "--from-results", tmp_path / f"n{n}", "--db", db, "--key", "k",
                "--json", cwd=elsewhere) for n in range(2)]
    assert [o.returncode for o in outs] == [0, 1], [o.stderr for o in outs]
    first, second = (json.loads(o.stdout) for o in outs)
    assert first["verdict"] == "green" and first["previous"] is None
    assert second["verdict"] == "red" and second["exit_code"] == 1
    assert {t["title"]: t["status"] for t in second["titles"]}[
        "possible deadlock in kto_abba_selftest"] == "new"
    assert "RED" in outs[1].stderr       # the human lines went to stderr


def test_check_series_and_bisect_json_flags(tmp_path, elsewhere, tree):
    """--json exists on both; bad input still is one line on stderr and nothing on stdout."""
    t, base, thread = tree
    for cmd in ("check-series", "bisect"):
        cp = kto(cmd, thread, "--run", "default", "--json", "--patches", "9",
                 cwd=elsewhere)
        assert cp.returncode == 2 and cp.stdout == "" and "patch 9/6" in cp.stderr


def test_bash_completion(elsewhere):
    script = REPO / "scripts" / "kto-completion.bash"
    venv_bin = Path(sys.executable).parent

    def complete(*words):
        prog = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
                f"COMP_CWORD={len(words) - 1}; _kto_complete; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        cp = subprocess.run(["bash", "-c", prog], capture_output=True, text=True,
                            cwd=elsewhere, env={**os.environ,
                                                "PATH": f"{venv_bin}:{os.environ['PATH']}"})
        return cp.stdout.split()
    if not (venv_bin / "kto").exists():
        pytest.skip("kto is not installed in this Python's bin directory (make setup)")
    assert {"run", "shell", "bisect", "check-series"} <= set(complete("kto", ""))
    assert "default" in complete("kto", "run", "") and "mm-vmemmap" in complete("kto", "shell", "mm")
    assert complete("kto", "run", "default", "--arch", "ar") == ["arm64"]
    assert "--source" in complete("kto", "bisect", "--so")
    assert complete("kto", "ci", "g") == ["gitlab", "github"]
    (elsewhere / "series.mbox").write_text("")
    assert complete("kto", "apply", "ser") == ["series.mbox"]


def test_phase_ticker_counts_a_phase_on_one_status_line(tmp_path):
    driver = """
import time
from orchestrator.buildprogress import PhaseTicker
from orchestrator.commands.run import progress
progress("x86_64: workload vmalloc (fast)")
with PhaseTicker(progress, "x86_64: workload vmalloc"):
    time.sleep(4.5)
progress("x86_64: workload vmalloc: pass")
"""
    import pexpect
    child = pexpect.spawn(sys.executable, ["-c", driver], env={**os.environ, "TERM": "xterm"},
                          cwd=str(REPO), timeout=60, encoding="utf-8")
    child.expect(pexpect.EOF)
    out = child.before
    assert "x86_64: workload vmalloc: 2s elapsed\r\x1b[K" in out, repr(out)
    assert "4s elapsed" in out and out.count("\n") == 2


def test_project_series_named_from_another_directory(elsewhere, tmp_path):
    """patches/examples/x.mbox (or examples/x.mbox) of kto's checkout, from elsewhere."""
    from orchestrator.commands import options
    want = str(REPO / "patches" / "examples" / "kasan-vmalloc.mbox")
    old = os.getcwd()
    os.chdir(elsewhere)
    try:
        assert options.series_spec("patches/examples/kasan-vmalloc.mbox") == want
        assert options.series_spec("examples/kasan-vmalloc.mbox") == want
        (elsewhere / "examples").mkdir()
        (elsewhere / "examples" / "kasan-vmalloc.mbox").write_text("mine")
        assert options.series_spec("examples/kasan-vmalloc.mbox") == \
            "examples/kasan-vmalloc.mbox"                   # the cwd's own file wins
    finally:
        os.chdir(old)
    cp = kto("apply", "examples/does-not-apply.mbox", cwd=elsewhere,
             env={"KTO_CACHE": str(tmp_path / "cache"), "KTO_RUNS": str(tmp_path / "none")})
    assert cp.returncode == 2 and "examples/does-not-apply.mbox: no such file" in cp.stderr


class _FakeTester:
    """seriestest.StepTester with kernels replaced: patch 2 of 3 adds a report (every
    time, so the bisect is deterministic). The real thing: test_dev_e2e.py/test_bisect_e2e."""
    TITLE = "KASAN: slab-out-of-bounds Read in vm_map_ram"

    def __init__(self, cfg, src, series, arch, directory, progress):
        from orchestrator import arch as arch_mod
        self.series, self.arch, self.directory = series, arch_mod.get(arch), directory
        self.results = []

    def run(self, k, stop_on=None):
        from orchestrator.results import JobResult, ReportEntry
        from orchestrator.seriestest import StepResult
        job = JobResult(arch=self.arch.name, outcome="ok")
        if k >= 2:
            job.reports.append(ReportEntry(self.TITLE, "KASAN", "vm_map_ram", False, "vmalloc",
                                           False, "x86_64/reports/001.txt", self.TITLE,
                                           ["vm_map_ram+0x1/0x2 (mm/vmalloc.c:3050)"]))
        res = StepResult(k, job, self.directory / f"step-{k}", True, True, 1.0)
        self.results.append(res)
        return res

    def builds(self):
        return len(self.results)

    boots = builds


def test_check_series_and_bisect_json_verdicts(monkeypatch, tmp_path, tree, capsys):
    from types import SimpleNamespace
    from orchestrator import seriestest
    from orchestrator.cli import main
    from orchestrator.series import load_series
    t, base, thread = tree
    from orchestrator.commands.run import progress
    from orchestrator.series import Selection
    monkeypatch.setattr(progress, "_stream", None)     # --json points it at stderr
    series = load_series(thread, select=Selection(numbers=(1, 2, 3)))
    cfg = SimpleNamespace(name="default", file=None)
    src = SimpleNamespace(commit="b" * 40)
    monkeypatch.setattr(seriestest, "prepare", lambda args, **kw: (cfg, src, series,
                                                                   ["x86_64"]))
    monkeypatch.setattr(seriestest, "StepTester", _FakeTester)
    monkeypatch.delenv("KTO_RUNS", raising=False)
    rc = main(["check-series", str(thread), "--run", "default", "--patches", "1-3", "--json",
               "--results", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert rc == 1 and data["exit_code"] == 1
    assert data["verdict"] == "the series adds kernel reports"
    assert data["arches"]["x86_64"]["new"] == [_FakeTester.TITLE]
    assert "verdict: the series adds kernel reports" in err
    rc = main(["bisect", str(thread), "--run", "default", "--patches", "1-3", "--json",
               "--results", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert rc == 1 and data["verdict"]["status"] == "found"
    assert data["verdict"]["first_bad"] == [2]
    assert "--patches 1-3" in data["reproducer"]
    assert "culprit: patch 2/6" in err


def test_known_issues_beside_the_runs_file_in_use(tmp_path, monkeypatch):
    from orchestrator import known_issues
    monkeypatch.chdir(tmp_path)
    project = known_issues.load_default(REPO)
    assert project and project[0].where.startswith(str(REPO / "known-issues.yaml"))
    assert known_issues.load_default() == []
    (tmp_path / "known-issues.yaml").write_text("- title: t\n  reason: mine\n")
    assert [k.reason for k in known_issues.load_default(REPO)] == ["mine"]   # ./ wins
