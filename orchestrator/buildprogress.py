"""What a person watching a kernel build wants to know: how far (done/total objects,
percent), how long so far, and how long still.

The total comes from the last build of the same build directory (kto-progress.json
there: the objects it compiled and how many .o files a finished build leaves). A build
directory holding a finished build's objects is incremental: its total is unknown until
make is done, so only the count and the time so far are shown, never a made-up percent.
Without any history, the total is estimated from the config (objects per built-in option,
measured on kto's own x86_64 configs)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE = "kto-progress.json"
# Compiled objects (CC/AS/LD/AR lines) per "=y"/"=m" option of a final .config: measured
# on kto's x86_64 tinyconfig + KASAN + lockdep + mm-workloads build.
OBJECTS_PER_OPTION = 2.3


def _object_files(build_dir: Path) -> int:
    n = 0
    for _root, _dirs, files in os.walk(build_dir):
        n += sum(f.endswith(".o") for f in files)
    return n


@dataclass
class Estimate:
    total: int | None       # objects this build will compile (None: unknown, incremental)
    source: str             # where the total comes from, for the first progress line
    incremental: bool = False
    left: float = 1.0       # share of a full build's objects missing from the build dir


def estimate(build_dir: Path, config_text: str, arch_total: int | None = None) -> Estimate:
    """Objects this build will compile, judged before make starts."""
    state = _load(build_dir)
    present = _object_files(build_dir)
    full = state.get("object_files") or 0
    if full and present >= 0.9 * full:
        last = state.get("compiled")
        return Estimate(None, f"incremental (the last build here compiled {last} objects in "
                        f"{_fmt(state.get('seconds', 0))})" if last is not None
                        else "incremental", incremental=True)
    left = 1 - present / full if full else 1.0
    if state.get("full_compiled"):
        return Estimate(max(1, round(state["full_compiled"] * left)),
                        "the last full build of this build directory", left=left)
    if arch_total:
        return Estimate(max(1, round(arch_total * left)), "the last cold build of this arch",
                        left=left)
    options = sum(1 for l in config_text.splitlines() if l.endswith(("=y", "=m")))
    return Estimate(max(1, round(options * OBJECTS_PER_OPTION * left)),
                    f"an estimate from the config ({options} options)", left=left)


def record(build_dir: Path, compiled: int, seconds: float, est: Estimate) -> None:
    """After a successful build: what the next build of this directory compares with."""
    state = _load(build_dir)
    state.update(compiled=compiled, seconds=round(seconds, 1),
                 object_files=_object_files(build_dir))
    if not est.incremental and est.left >= 0.5:
        # Mostly cold: scale up to what a build from an empty directory compiles.
        state["full_compiled"] = round(compiled / est.left)
    tmp = build_dir / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state) + "\n")
    tmp.replace(build_dir / STATE)


def _load(build_dir: Path) -> dict:
    try:
        return json.loads((build_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}


class PhaseTicker:
    """``with PhaseTicker(progress, "x86_64: workload vmalloc"):`` says
    "x86_64: workload vmalloc: 1m05s elapsed" every 20 s (every 2 s on a live terminal,
    where kto run's Progress keeps it on one status line)."""

    def __init__(self, progress, label: str):
        import threading
        self.progress, self.label = progress, label
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        import time
        from orchestrator import verbosity
        t0 = time.monotonic()
        while not self.done.wait(2 if verbosity.LIVE else 20):
            self.progress(f"{self.label}: {_fmt(time.monotonic() - t0)} elapsed")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()


def _fmt(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def line(est: Estimate, done: int, elapsed: float, at: str) -> str:
    """``build: 3m20s, 812/1900 objects (43%), ETA 4m10s, at mm/vmalloc.o``"""
    head = f"build: {_fmt(elapsed)}"
    where = f", at {at}" if at else ""
    if est.total is None:
        return f"{head}, {done} objects compiled (incremental){where}"
    total = max(est.total, done)
    pct = min(99, 100 * done // total)
    eta = ""
    if done >= 5 and elapsed >= 5:     # the rate of the first seconds says little
        eta = f", ETA {_fmt((total - done) * elapsed / done)}"
    return f"{head}, {done}/{total} objects ({pct}%){eta}{where}"
