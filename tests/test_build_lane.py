"""The background build lane (kto build --background) beside foreground kto processes:
each has its own build lock, so neither waits for the other's build; the lane runs at
nice 19; and builds of different build directories use different worktrees, so the lane's
debug-VM kernel never holds the arch's main worktree."""
import fcntl
import subprocess
import sys
import textwrap

from orchestrator import build, cache, source


def _holding(lock_path):
    """A child process holding ``lock_path`` until its stdin closes."""
    code = textwrap.dedent(f"""
        import fcntl, sys
        fh = open({str(lock_path)!r}, "a")
        fcntl.flock(fh, fcntl.LOCK_EX)
        print("held", flush=True)
        sys.stdin.read()
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def _slot_waits(monkeypatch, lock_name):
    """Whether build._build_slot with ``lock_name`` would wait (it says so first)."""
    monkeypatch.setattr(build, "_SLOT_LOCK", lock_name)
    said = []
    with build._build_slot(said.append):
        pass
    return any("waiting" in m for m in said)


def test_foreground_and_background_builds_never_wait_for_each_other(tmp_path, monkeypatch):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path))
    root = cache.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    lane = _holding(root / "build-background.lock")      # the lane is building
    try:
        assert not _slot_waits(monkeypatch, "build.lock")
    finally:
        lane.communicate("")
    fg = _holding(root / "build.lock")                   # a foreground build
    try:
        assert not _slot_waits(monkeypatch, "build-background.lock")
        # ...while a second foreground build does wait for it (here: would; not blocked)
        with open(root / "build.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("build.lock was free while another process held it")
            except BlockingIOError:
                pass
    finally:
        fg.communicate("")


def test_background_lane_is_nice_19_with_its_own_lock():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os
        from orchestrator import build
        before = os.nice(0)
        build.run_in_background()
        print(before, os.nice(0), build._SLOT_LOCK)
    """)], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "19" and out[2] == "build-background.lock", out


def test_each_build_directory_has_its_own_worktree():
    assert source.build_slot("x86_64", "main") == "x86_64"        # the existing worktrees
    assert source.build_slot("x86_64", "debug-vm") == "x86_64-debug-vm"
    assert source.build_slot("arm64", "debug-vm") != source.build_slot("x86_64", "debug-vm")
