"""Faults (issue 15, point 7): Ctrl-C and SIGKILL during a source import and during a build.
kto stops within a couple of seconds, no child of it (tar, xz, git, make, compilers) runs
on, and what a killed import leaves is collected by the next import or `kto cache prune`.

The import runs `kto run default` on the real Debian tarball with a scratch KTO_CACHE (it
is killed long before any build); the build uses build._run_make, the function that runs
the kernel's make, on a Makefile of sleeps (no kernel build beside the real ones)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.source import DEFAULT_TARBALL
from tests.signals import sigint_default

REPO = Path(__file__).resolve().parents[2]


def children(pid: int) -> dict[int, str]:
    """Every descendant of ``pid``: {pid: command}."""
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            comm[int(d.name)] = stat[stat.index("(") + 1:stat.rindex(")")]
        except (OSError, ValueError, IndexError):
            continue
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = comm[c]
                todo.append(c)
    return out


def alive(pids) -> list[int]:
    out = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(p)
    return out


def wait_gone(pids, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def wait_for_child(proc: subprocess.Popen, names: set[str], seconds: float) -> dict[int, str]:
    """Wait until one of ``names`` runs under ``proc``; return all descendants seen."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        now = children(proc.pid)
        seen.update(now)
        if names & set(now.values()):
            time.sleep(1.0)               # let it get going (and its own children start)
            seen.update(children(proc.pid))
            return seen
        time.sleep(0.1)
    raise AssertionError(f"none of {names} started (seen: {seen}, exit {proc.poll()})")


# ---------------------------------------------------------------- source import

def start_run(tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "KTO_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "default",
                             "--results", str(tmp_path / "results")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True,      # its own group, like a terminal job
                            preexec_fn=sigint_default)


@pytest.mark.skipif(not DEFAULT_TARBALL.is_file(), reason="needs linux-source-6.12")
def test_import_ctrl_c_and_sigkill(tmp_path):
    root = tmp_path / "cache"

    # SIGKILL: kto cannot clean up; its children must still die with it.
    run = start_run(tmp_path)
    seen = wait_for_child(run, {"tar"}, 60)
    run.kill()
    run.communicate(timeout=30)
    assert wait_gone(seen, 3) == [], {p: seen[p] for p in alive(seen)}
    first = {p.name for p in root.glob(".import-*")}
    assert first

    # Ctrl-C (SIGINT to the process group, as a terminal sends it) while tar extracts.
    run = start_run(tmp_path)
    seen = wait_for_child(run, {"tar"}, 60)
    time.sleep(8)                          # some hundred MB extracted
    t0 = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert time.monotonic() - t0 < 3, err
    assert run.returncode == 130 and b"kto: interrupted" in err and b"Traceback" not in err
    assert wait_gone(seen, 3) == [], seen
    # Left for later (deleting 1.5 GB would hold the Ctrl-C); the killed one's went first.
    assert list(root.glob(".import-*")) and not first & {p.name for p in root.glob(".import-*")}

    # SIGINT to kto alone (kill -INT PID): its children are stopped by kto itself.
    run = start_run(tmp_path)
    seen = wait_for_child(run, {"tar"}, 60)
    t0 = time.monotonic()
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert time.monotonic() - t0 < 3 and run.returncode == 130
    assert wait_gone(seen, 3) == [], seen

    # ... and `kto cache prune` (or the next import) collects what is left.
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "cache", "prune",
                         "--max-size", "1T"], cwd=REPO, capture_output=True, text=True,
                        env={**os.environ, "KTO_CACHE": str(root), "PYTHONPATH": str(REPO)})
    assert cp.returncode == 0, cp.stderr
    assert "removed leftover of a killed source import" in cp.stdout
    assert not list(root.glob(".import-*"))


# ---------------------------------------------------------------- build (make)

MAKEFILE = textwrap.dedent("""\
    all: a b
    a:
    \tsleep {n}1
    b:
    \tsleep {n}2
    """)


def start_make(tmp_path: Path, n: int) -> subprocess.Popen:
    mk = tmp_path / "fake.mk"
    mk.write_text(MAKEFILE.format(n=n))
    code = ("import os, sys\nfrom orchestrator import build\n"
            f"build._run_make(['make', '-f', {str(mk)!r}, '-j2'], dict(os.environ), "
            f"__import__('pathlib').Path({str(tmp_path / 'build.log')!r}), print, None)\n")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=sigint_default)


def sleeps(n: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "cmdline").read_bytes() in (
                    f"sleep\0{n}1\0".encode(), f"sleep\0{n}2\0".encode()):
                out.append(int(d.name))
        except OSError:
            pass
    return alive(out)


@pytest.mark.parametrize("how", ["ctrl-c", "sigint-kto", "sigkill"])
def test_build_interrupted_or_killed_leaves_no_make(tmp_path, how):
    n = 3000 + os.getpid() % 500 * 10 + ["ctrl-c", "sigint-kto", "sigkill"].index(how)
    run = start_make(tmp_path, n)
    wait_for_child(run, {"sleep"}, 30)
    deadline = time.monotonic() + 10
    while len(sleeps(n)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sleeps(n)) == 2
    seen = children(run.pid)
    t0 = time.monotonic()
    if how == "ctrl-c":
        os.killpg(run.pid, signal.SIGINT)
    elif how == "sigint-kto":
        run.send_signal(signal.SIGINT)
    else:
        run.kill()
    run.communicate(timeout=30)
    assert time.monotonic() - t0 < 7
    assert wait_gone(seen, 7) == [], {p: seen[p] for p in alive(seen)}
    assert sleeps(n) == []
