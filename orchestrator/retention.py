"""Cache retention: prune the cache (and optionally old results directories) down to a
size, least recently used first.

Prunable, each entry whole:
- ``builds/<arch>/<key>``   finished builds in the store (last use: metadata.json mtime);
- ``images/<arch>/<key>``   guest images;   ``selftests/<arch>/<key>`` built selftests;
- ``build-dirs/<arch>-<name>`` persistent incremental build directories: only while
  holding the machine's build lock (``build.lock``, the lock every kto build takes), so a
  build in progress is never pulled from under it; if a build holds it, build dirs are
  skipped this time;
- results directories under ``--results DIR``, only those kto provably made: a
  ``<run>-<YYYYmmdd-HHMMSS>`` name, the marker file kto writes when it creates one
  (results.MARKER) and a summary.json that loads as kto's own. Anything else there (a
  source tree with a summary.json of its own, a symlink) is left alone;
- ``.import-*`` leftovers of a source import that was killed (source.py), whatever
  their age: no import is running while prune holds the source lock;
- temporaries of a killed kto (``.<entry>.tmp-*`` of cache.atomic_dir in builds/,
  images/ and selftests/, ``.prune-*`` of an interrupted prune) older than ``min_age``:
  one being written now is younger.

Entries used within ``min_age`` seconds (default one hour) are kept: a job that is
running may still need its build's vmlinux to symbolize reports. Never pruned: the
source repository (linux.git), the per-arch worktrees (trees/), ccache (bounded by its own
``ccache -M``), downloaded packages, the SSH key and the history database; they count in
the total, and the result says when they alone keep it over the limit.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``20G``, ``500M``, ``1.5GiB``, ``123456`` (bytes; binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*", text or "", re.I)
    if not m:
        raise ConfigError(f"--max-size {text!r}: expected a size like 20G, 500M or 1.5GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def fmt_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def du(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path, onerror=lambda e: None):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


@dataclass
class Entry:
    path: Path
    kind: str            # build | image | selftests | build-dir | results
    size: int
    last_use: float


@dataclass
class PruneResult:
    total_before: int
    total_after: int
    limit: int
    leftovers: list[Path] = field(default_factory=list)   # .import-* of killed imports
    removed: list[Entry] = field(default_factory=list)
    kept_recent: list[Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)      # why something was not pruned


def _last_use(path: Path, markers=("metadata.json",)) -> float:
    times = [path.stat().st_mtime]
    for m in markers:
        with contextlib.suppress(OSError):
            times.append((path / m).stat().st_mtime)
    return max(times)


def _entries(root: Path, results_root: Path | None) -> list[Entry]:
    out = []
    for kind, sub in (("build", "builds"), ("image", "images"), ("selftests", "selftests")):
        for arch_dir in sorted((root / sub).glob("*")) if (root / sub).is_dir() else []:
            for e in sorted(arch_dir.iterdir()) if arch_dir.is_dir() else []:
                if e.is_dir() and not e.name.startswith("."):
                    out.append(Entry(e, kind, du(e), _last_use(e)))
    bd = root / "build-dirs"
    for e in sorted(bd.iterdir()) if bd.is_dir() else []:
        if e.is_dir():
            out.append(Entry(e, "build-dir", du(e), _last_use(e, (".config", "vmlinux"))))
    if results_root is not None and results_root.is_dir():
        for e in sorted(results_root.iterdir()):
            if _made_by_kto(e):
                out.append(Entry(e, "results", du(e), _last_use(e, ("summary.json",))))
    return out


_TEMPORARY = re.compile(r"\..+\.tmp-.+|\.prune-.+")


def _stale_temporaries(root: Path, now: float, min_age: float) -> list[Path]:
    dirs = [root] + [a for sub in ("builds", "images", "selftests")
                     for a in ((root / sub).iterdir() if (root / sub).is_dir() else [])
                     if a.is_dir()]
    gone = []
    for d in dirs:
        for p in d.iterdir():
            if not _TEMPORARY.fullmatch(p.name) or p.is_symlink():
                continue
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime < min_age:
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink()
                gone.append(p)
    return gone


def _made_by_kto(path: Path) -> bool:
    from orchestrator import results
    if path.is_symlink() or not path.is_dir() or not results.RUN_DIR_NAME.fullmatch(path.name):
        return False
    marker = path / results.MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        results.load(path)
    except Exception:       # not a summary kto wrote (or one it cannot read): keep it
        return False
    return True


@contextlib.contextmanager
def _try_build_lock(root: Path):
    """Yield True holding the build lock, or False when a build holds it."""
    path = root / "build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    trash = path.with_name(f".prune-{path.name}-{os.getpid()}")
    path.rename(trash)          # gone from its name at once, then deleted
    shutil.rmtree(trash, ignore_errors=True)


def prune(root: Path, max_size: int, results_root: Path | None = None,
          min_age: float = 3600, dry_run: bool = False, now: float | None = None) -> PruneResult:
    now = time.time() if now is None else now
    leftovers = []
    if not dry_run:
        from orchestrator import source
        leftovers = source.collect_import_leftovers(root) + _stale_temporaries(root, now,
                                                                               min_age)
    entries = _entries(root, results_root)
    total = du(root) + (sum(e.size for e in entries if e.kind == "results"))
    res = PruneResult(total, total, max_size, leftovers=leftovers)
    with _try_build_lock(root) as have_lock:
        if not have_lock:
            res.skipped.append("build-dirs: a kto build holds build.lock")
        for e in sorted(entries, key=lambda e: e.last_use):
            if res.total_after <= max_size:
                break
            if e.kind == "build-dir" and not have_lock:
                continue
            if now - e.last_use < min_age:
                res.kept_recent.append(e)
                continue
            if not dry_run:
                _remove(e.path)
            res.removed.append(e)
            res.total_after -= e.size
    if res.total_after > max_size:
        fixed = [n for n in ("linux.git", "trees", "ccache") if (root / n).exists()]
        res.skipped.append(f"still {fmt_size(res.total_after - max_size)} over the limit: "
                           f"{', '.join(fixed) or 'what is left'} and recently used entries "
                           "are not pruned")
    return res
