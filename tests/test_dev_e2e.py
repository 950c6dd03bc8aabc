"""kto shell and kto run --keep/--source on the real x86_64 kernel of the `default` run
(a build-store hit once built), driven the way a person would, through a pty, from a
directory that is not kto's checkout. After each: the console log is complete and no
QEMU is left."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from orchestrator import source, vm
from tests.kernels import built_kernel
from tests.test_e2e import qemu_processes

pytestmark = pytest.mark.slow

KTO = [sys.executable, "-m", "orchestrator"]


@pytest.fixture(scope="module")
def kernel():
    return built_kernel("default", "x86_64")


def spawn(argv, cwd):
    env = {k: v for k, v in os.environ.items() if k != "KTO_RUNS"}
    env["TERM"] = "xterm"
    return pexpect.spawn(KTO[0], [*KTO[1:], *map(str, argv)], cwd=str(cwd), env=env,
                         encoding="utf-8", timeout=900, dimensions=(40, 200))


def results_dir(root: Path, prefix: str) -> Path:
    [d] = [p for p in root.iterdir() if p.name.startswith(prefix)]
    return d


def test_kto_shell_uname_meminfo_exit(kernel, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    child = spawn(["shell", "default", "--arch", "x86_64", "--results", tmp_path / "r"], cwd)
    try:
        # the banner: "Linux R; [workload modules: ...; ]console log: F; leave with ..."
        child.expect(r"Linux (\S+);.*console log: \S+; leave with exit or Ctrl-D",
                     timeout=600)
        release = child.match.group(1)
        assert release.startswith("6.12.")
        child.expect(r"[#$] ", timeout=60)                   # the guest's shell prompt
        child.sendline("uname -r; echo kto-mark-$((6*7))")
        child.expect(r"kto-mark-42", timeout=60)
        assert release in child.before
        child.sendline("cat /proc/meminfo")
        child.expect(r"MemTotal:\s+(\d+) kB", timeout=60)
        assert int(child.match.group(1)) > 1024 * 1024      # the run's 2 GiB guest
        child.sendline("echo kto-shell-was-here > /dev/kmsg")
        child.sendline("exit")
        child.expect(r"kto shell: guest stopped; console log: (\S+)")
        log = Path(child.match.group(1))
        child.expect(r"kto shell: (\d+) kernel report\(s\)")
        assert child.match.group(1) == "0"
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    console = log.read_text(errors="replace")
    assert "Linux version 6.12" in console and vm.READY_MARK in console
    assert "kto-shell-was-here" in console              # captured during the session
    summary = json.loads((log.parent / "shell.json").read_text())
    assert summary["kernel_release"] == release and summary["reports"] == []
    assert log.parent.parent.parent == tmp_path / "r"
    assert qemu_processes() == []


def test_kto_shell_mm_has_the_workload_binaries(kernel, tmp_path):
    child = spawn(["shell", "mm", "--results", tmp_path / "r"], tmp_path)
    try:
        child.expect(r"workload binaries in (\S+);")
        where = child.match.group(1)
        child.expect(r"[#$] ", timeout=60)
        # kto-selftest's way to run a program without ASLR (aslr: false) works with the
        # guest's busybox: the child's personality has ADDR_NO_RANDOMIZE (0x0040000).
        child.sendline(f"{where}/kto-selftest run 30 {where} linux64 -R "
                       "cat /proc/self/personality")
        child.expect(r"\r\n00040000\r\n", timeout=60)
        child.sendline(f"ls -1 {where}; exit")
        child.expect(r"hugepage-mmap", timeout=60)          # ls -1: one a line, sorted
        child.expect(r"uffd-unit-tests", timeout=60)
        child.expect(r"kto shell: 0 kernel report\(s\)")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert qemu_processes() == []


def test_kto_shell_guest_crash_is_recorded_as_a_report(kernel, tmp_path):
    """The guest dies under the user (sysrq crash): the shell ends, the panic is
    extracted from the console log, exit 1, no QEMU left."""
    child = spawn(["shell", "--results", tmp_path / "r"], tmp_path)
    try:
        child.expect(r"leave with exit or Ctrl-D")
        child.expect(r"[#$] ", timeout=60)
        child.sendline("echo c > /proc/sysrq-trigger")
        child.expect(r"kto shell: (\d+) kernel report\(s\)", timeout=300)
        assert int(child.match.group(1)) >= 1
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    d = results_dir(tmp_path / "r", "shell-default-") / "x86_64"
    titles = [r["title"] for r in json.loads((d / "shell.json").read_text())["reports"]]
    assert any("sysrq" in t.lower() or "panic" in t.lower() for t in titles), titles
    assert "Kernel panic" in (d / "console.log").read_text(errors="replace")
    assert qemu_processes() == []


@pytest.fixture(scope="module")
def own_tree(tmp_path_factory):
    """A developer's kernel git tree: a clone of the source cache at the tarball's commit.
    Sparse (mm/ and the top-level files): kto reads a --source tree only through git, and
    a full checkout is 92k files (19 s to write, 11 s to delete idle) that pytest deletes
    three sessions later: in a cold .ci/run, test-vmemmap's session spent about 3 min
    after its one test, in that clean-up, beside the build lane."""
    commit = source.resolve(source.SourceSpec()).commit
    tree = tmp_path_factory.mktemp("dev") / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(source.repo()),
                    str(tree)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(tree), "sparse-checkout", "set", "mm"], check=True)
    subprocess.run(["git", "-C", str(tree), "checkout", "-q", commit], check=True)
    for k, v in (("user.name", "Dev"), ("user.email", "dev@example.org")):
        subprocess.run(["git", "-C", str(tree), "config", k, v], check=True)
    return tree, commit


def test_run_source_own_tree_and_keep(kernel, own_tree, tmp_path):
    """kto run default --source CLONE --keep: a developer's clone at the tarball's commit
    is the same source (a store hit, no build); the finished guest stays up for ssh until
    Ctrl-C, then the run ends normally with complete results."""
    tree, commit = own_tree
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    child = spawn(["run", "default", "--source", tree, "--keep", "--results", tmp_path / "r"],
                  cwd)
    try:
        child.expect(r"guest kept up; get in with: (ssh .*?)  \(Ctrl-C stops it\)")
        argv = shlex.split(child.match.group(1))
        assert "127.0.0.1" in argv[-1]
        cp = subprocess.run([*argv, "uname -r; cat /proc/meminfo"], capture_output=True,
                            text=True, timeout=120)
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.startswith("6.12.") and "MemTotal:" in cp.stdout
        child.sendintr()
        child.expect(r"stopping the kept guest")
        child.expect(r"kto run default: git (\S+) (\w+) @ (\w+)")
        assert child.match.group(1) == str(tree) and commit.startswith(child.match.group(3))
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    d = results_dir(tmp_path / "r", "default-")
    summary = json.loads((d / "summary.json").read_text())
    [job] = summary["jobs"]
    assert job["outcome"] == "ok" and job["build"]["status"] == "cached"
    assert f"--source {tree}@{commit}" in job["reproducer"]
    assert qemu_processes() == []


def test_apply_lone_patch_of_a_thread_on_the_real_tree(tmp_path):
    """A reviewer's lone [PATCH 1/6] (no other patch of the thread at hand), applied from
    another directory onto the real 6.12 source: refused without a selection, with
    --partial / --patches 1 it reaches git am, which fails naming the file and hunk."""
    from orchestrator.series import load_series
    mbox = Path(__file__).resolve().parent.parent / "patches/examples/does-not-apply.mbox"
    second = load_series(mbox).patches[1].text       # its hunk 3 does not match 6.12
    lone = tmp_path / "lone.patch"
    lone.write_text(second.replace("[PATCH 2/3]", "[PATCH 1/6]"))
    env = {k: v for k, v in os.environ.items() if k != "KTO_RUNS"}
    run = lambda *a: subprocess.run([*KTO, "apply", str(lone), *a], capture_output=True,
                                    text=True, cwd=tmp_path, env=env)
    cp = run()
    assert cp.returncode == 2 and "give --partial (or --patches 1)" in cp.stderr, cp.stderr
    for flag in (["--partial"], ["--patches", "1"]):
        cp = run(*flag)
        assert cp.returncode == 2 and cp.stderr.count("\n") == 1, cp.stderr
        assert cp.stderr == (
            'kto: error: patch 1/6 "mm/vmalloc: count vm_unmap_ram() calls too" does not '
            "apply: hunk 3 of mm/vmalloc.c (@@ -3035,10 +3044,6 @@ "
            "EXPORT_SYMBOL(vm_unmap_ram);)\n")


MARK = "kto-dev-loop: lone patch 2/2 is in this kernel"


def test_check_series_lone_patch_on_own_tree_json(kernel, own_tree, tmp_path):
    """check-series of a lone [PATCH 2/2] (--partial) on the developer's tree at a given
    commit (--source TREE@REV), from another directory, verdict as JSON: the tip kernel
    is really patched (its console shows the patch's marker), the base is the store hit."""
    tree, commit = own_tree
    git = lambda *a: subprocess.run(["git", "-C", str(tree), *a], check=True,
                                    capture_output=True, text=True).stdout
    vmalloc = tree / "mm" / "vmalloc.c"
    text = vmalloc.read_text()
    vmalloc.write_text(text.replace('#include "pgalloc-track.h"\n',
                                    '#include "pgalloc-track.h"\n/* kto dev loop, 1/2 */\n', 1))
    git("commit", "-qam", "mm/vmalloc: a comment")
    vmalloc.write_text(vmalloc.read_text().replace(
        '\tproc_create_single("vmallocinfo", 0400, NULL, vmalloc_info_show);\n',
        f'\tproc_create_single("vmallocinfo", 0400, NULL, vmalloc_info_show);\n'
        f'\tpr_info("{MARK}\\n");\n', 1))
    git("commit", "-qam", "mm/vmalloc: say hello")
    git("format-patch", "-q", "-o", str(tmp_path / "thread"), f"{commit}..HEAD")
    git("checkout", "-q", commit)
    [lone] = (tmp_path / "thread").glob("0002-*.patch")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KTO_RUNS"}
    cp = subprocess.run([*KTO, "check-series", str(lone), "--run", "default", "--partial",
                         "--source", f"{tree}@{commit[:12]}", "--json", "--results",
                         str(tmp_path / "r")], capture_output=True, text=True, cwd=cwd,
                        env=env, timeout=3000)
    assert cp.returncode == 0, cp.stderr[-3000:]
    data = json.loads(cp.stdout)
    assert data["verdict"] == "no new kernel reports" and data["exit_code"] == 0
    assert data["base"] == commit
    assert data["patches"] == ['patch 2/2 "mm/vmalloc: say hello"']
    x86 = data["arches"]["x86_64"]
    assert x86["base"]["outcome"] == x86["tip"]["outcome"] == "ok"
    assert x86["new"] == []
    tip_console = Path(x86["tip"]["directory"]) / "console.log"
    assert MARK in tip_console.read_text(errors="replace")
    assert MARK not in (Path(x86["base"]["directory"]) / "console.log").read_text(
        errors="replace")
    assert "verdict: no new kernel reports" in cp.stderr     # the human lines
    assert qemu_processes() == []
