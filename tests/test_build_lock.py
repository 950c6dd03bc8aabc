"""One kernel is never built twice by two kto processes: build.build looks the kernel up
in the store again once it holds the machine's build lock, so a second builder that
waited for the first one gets its store entry instead of running make. No kernel here:
configure and the locked build are replaced, the lock is held by a real process."""
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestrator import arch, build
from orchestrator.toolchain import Toolchain

CONFIG = "CONFIG_A=y\nCONFIG_KASAN=y\n"
HOLD = ("import fcntl, sys, time\nf = open(sys.argv[1], 'a')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\ntime.sleep(600)\n")


def _inp():
    return build.BuildInput(
        arch=arch.get("x86_64"), toolchain=Toolchain("", "gcc", "gcc 12"), tree=Path("/t"),
        commit="c" * 40, tree_id="t" * 40, base_commit="c" * 40, patches=[],
        fragments=[])


def _build_while_locked(tmp_path, monkeypatch, first_builder_stores: bool):
    """build.build on a thread while another process holds build.lock; once the thread
    says it waits, the "first builder" stores the kernel (or not) and lets go."""
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "configure", lambda inp, progress=print: CONFIG)
    inp = _inp()
    key = build.build_key(inp, CONFIG)
    final = build.store_dir(inp.arch, key)
    made = []

    def locked_build(inp, config_text, key, final, t0, progress, jobs):
        made.append(key)         # where make would run
        return build.BuildResult("ok", key, final, 0.0, None)
    monkeypatch.setattr(build, "_build_locked", locked_build)
    lock = tmp_path / "cache" / "build.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    said, out = [], {}
    try:
        assert holder.stdout.readline().strip() == "locked"
        t = threading.Thread(target=lambda: out.update(r=build.build(inp, said.append)))
        t.start()
        deadline = time.monotonic() + 20
        while not any("waiting for another kto build" in m for m in said):
            assert time.monotonic() < deadline and t.is_alive(), said
            time.sleep(0.05)
        assert "r" not in out                  # it is waiting, not done
        if first_builder_stores:
            final.mkdir(parents=True)
            (final / "metadata.json").write_text(f'{{"key": "{key}"}}\n')
    finally:
        holder.kill()                          # the first builder is done: lock released
        holder.wait()
    t.join(20)
    assert not t.is_alive()
    return out["r"], made, key, final


def test_second_builder_waiting_on_the_lock_gets_the_store_hit(tmp_path, monkeypatch):
    r, made, key, final = _build_while_locked(tmp_path, monkeypatch, True)
    assert made == [], "the second builder ran make for a kernel the first one stored"
    assert (r.status, r.key, r.dir) == ("cached", key, final)
    assert r.metadata == {"key": key}


def test_second_builder_builds_when_the_first_stored_nothing(tmp_path, monkeypatch):
    """The same wait, but the first builder failed (nothing stored): the second builds."""
    r, made, key, _ = _build_while_locked(tmp_path, monkeypatch, False)
    assert made == [key] and r.status == "ok"
