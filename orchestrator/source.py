"""Kernel source: one cached git repository holding every source kto has seen.

A Debian ``linux-source`` tarball is imported once as a commit whose id depends only on
the tarball's content; a local git tree is fetched into the same repository. Builds check
out an exact commit into a per-slot worktree, so patches applied there never dirty the
cache, and a slot reused across commits (bisect) only rewrites the files that differ.
"""
from __future__ import annotations

import contextlib

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import cache
from orchestrator.errors import ConfigError, KtoError
from orchestrator.proc import git, run

DEFAULT_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")

# Fixed identity so that importing the same tarball twice gives the same commit id.
_IMPORT_ENV = {
    "GIT_AUTHOR_NAME": "kto import", "GIT_AUTHOR_EMAIL": "kto@localhost",
    "GIT_COMMITTER_NAME": "kto import", "GIT_COMMITTER_EMAIL": "kto@localhost",
    "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z",
}


@dataclass(frozen=True)
class SourceSpec:
    """Where a run's kernel comes from (runs.yaml ``source:``)."""
    tarball: Path | None = DEFAULT_TARBALL
    git: Path | None = None
    ref: str | None = None

    def describe(self) -> str:
        if self.git:
            return f"git {self.git} {self.ref or 'HEAD'}"
        return f"tarball {self.tarball}"


@dataclass(frozen=True)
class SourceTree:
    """A resolved source: an exact commit in the cache repository."""
    commit: str
    version: str      # kernel version from the top Makefile, e.g. 6.12.117
    origin: str       # SourceSpec.describe()


def repo() -> Path:
    """The cache repository (bare), created on first use."""
    path = cache.cache_root() / "linux.git"
    if not (path / "HEAD").exists():
        with cache.locked(cache.cache_root() / "linux.git.lock"):
            if not (path / "HEAD").exists():
                tmp = Path(tempfile.mkdtemp(prefix=".linux.git.", dir=cache.cache_root()))
                git(tmp, "init", "-q", "--bare")
                git(tmp, "config", "gc.auto", "0")
                tmp.rename(path)
    return path


def resolve(spec: SourceSpec, progress=print) -> SourceTree:
    if spec.git:
        commit = _fetch_git(spec)
    else:
        commit = _import_tarball(spec.tarball, progress)
    return SourceTree(commit=commit, version=kernel_version(commit), origin=spec.describe())


def kernel_version(commit: str) -> str:
    makefile = git(repo(), "show", f"{commit}:Makefile", check=False)
    if "PATCHLEVEL" not in makefile:
        raise ConfigError(f"commit {commit[:12]}: not a Linux source tree (no top Makefile "
                          "with VERSION/PATCHLEVEL)")
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)",
                             makefile, re.M))
    return "{}.{}.{}{}".format(fields.get("VERSION", "?"), fields.get("PATCHLEVEL", "?"),
                               fields.get("SUBLEVEL", "0"), fields.get("EXTRAVERSION", ""))


def _sha256(path: Path) -> str:
    # Hashing the 150 MB tarball took a tenth of a cached run's own time: its hash is
    # remembered in the cache against its size, mtime and inode (apt replaces the file).
    st = path.stat()
    stamp = [str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino]
    memo = cache.cache_root() / "tarball-sha256.json"
    try:
        known = json.loads(memo.read_text())
        if known.get("file") == stamp:
            return known["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = _sha256_of(path)
    cache.atomic_write(memo, json.dumps({"file": stamp, "sha256": digest}))
    return digest


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect_import_leftovers(root: Path | None = None, block: bool = False) -> list[Path]:
    """Delete ``.import-*`` work directories of imports that were killed (SIGKILL, power
    loss, a Ctrl-C during clean-up). Only while holding the source lock, so never the
    directory of an import in progress; without ``block``, skipped if an import holds it."""
    root = root or cache.cache_root()
    if not (root.is_dir() and any(root.glob(".import-*"))):
        return []
    with cache.locked(root / "linux.git.lock", block=block) as have:
        return _remove_leftovers(root) if have else []


def _remove_leftovers(root: Path) -> list[Path]:
    found = sorted(root.glob(".import-*"))
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return found


def _import_tarball(tarball: Path, progress) -> str:
    if not tarball.is_file():
        raise ConfigError(f"{tarball}: kernel source tarball not found "
                          "(install linux-source-6.12: scripts/setup-system.sh)")
    ref = f"refs/kto/tarball/{_sha256(tarball)}"
    r = repo()
    collect_import_leftovers()
    existing = git(r, "rev-parse", "-q", "--verify", ref, check=False)
    if existing:
        return existing
    with cache.locked(cache.cache_root() / "linux.git.lock"):
        existing = git(r, "rev-parse", "-q", "--verify", ref, check=False)
        if existing:
            return existing
        _remove_leftovers(cache.cache_root())
        t0 = time.monotonic()
        progress(f"source: importing {tarball} into {r} (once; ~2 min)")
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=cache.cache_root()))
        index = work.parent / f"{work.name}.index"
        # Interrupted or failed: no clean-up here (deleting 1.5 GB would hold a Ctrl-C for
        # a minute); the .import-* leftovers go at the next import or `kto cache prune`.
        try:
            run(["tar", "-xf", str(tarball), "-C", str(work), "--strip-components=1"])
            env = {**os.environ, **_IMPORT_ENV, "GIT_DIR": str(r), "GIT_WORK_TREE": str(work),
                   "GIT_INDEX_FILE": str(index)}
            # Debian's .gitignore ends with "/*": without -f nothing would be added.
            run(["git", "add", "-f", "-A", "."], cwd=work, env=env)
            tree = run(["git", "write-tree"], cwd=work, env=env).stdout.strip()
            commit = run(["git", "commit-tree", tree, "-m", f"Import {tarball.name}"],
                         cwd=work, env=env).stdout.strip()
            git(r, "update-ref", ref, commit)
        except KtoError:        # a failure (not an interruption): clean up before the error
            _remove_leftovers(cache.cache_root())
            raise
        progress(f"source: imported as {commit[:12]} in {time.monotonic() - t0:.0f}s")
        # The import is done: a Ctrl-C from here on stops kto, the leftovers are collected.
        shutil.rmtree(work, ignore_errors=True)
        index.unlink(missing_ok=True)
        return commit


def _fetch_git(spec: SourceSpec) -> str:
    tree = spec.git
    if not (tree / ".git").exists() and not (tree / "HEAD").exists():
        raise ConfigError(f"{tree}: not a git repository")
    ref = spec.ref or "HEAD"
    sha = git(tree, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise ConfigError(f"{tree}: unknown ref {ref!r}")
    r = repo()
    if not git(r, "cat-file", "-t", sha, check=False) == "commit":
        run(["git", "-C", str(r), "fetch", "-q", "--no-tags", str(tree.resolve()), sha])
    git(r, "update-ref", f"refs/kto/git/{sha}", sha)
    return sha


def build_slot(arch_name: str, build_dir: str) -> str:
    """The worktree a build directory compiles from: one per (arch, build directory), so a
    build in one (e.g. a background lane's debug-VM kernel) never holds up another's (the
    foreground's patched default kernels) on the same arch; the same kernel is still built
    once (one worktree lock, then the build store). ``main`` keeps the arch's own name."""
    return arch_name if build_dir == "main" else f"{arch_name}-{build_dir}"


class Worktree:
    """A checkout of the cache repository for one build slot (e.g. ``x86_64-default``).

    Hold it with ``with Worktree(slot) as wt:`` - a lock keeps two runs off one slot.
    """

    def __init__(self, slot: str):
        self.slot = slot
        self.path = cache.cache_root() / "trees" / slot
        self._lock = None

    def __enter__(self) -> "Worktree":
        self._lock = cache.locked(cache.cache_root() / "trees" / f"{self.slot}.lock")
        self._lock.__enter__()
        self._drop_stale_index_lock()
        return self

    def _drop_stale_index_lock(self) -> None:
        """A git killed with its kto (children die with kto: proc.py) leaves index.lock
        behind, and every later git command in this worktree would refuse to run. Only
        kto uses its worktrees and we hold the slot's lock, so no git is running here."""
        gitfile = self.path / ".git"
        if not gitfile.is_file():
            return
        text = gitfile.read_text(errors="replace").strip()
        if text.startswith("gitdir: "):
            stale = Path(text[len("gitdir: "):]) / "index.lock"
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def __exit__(self, *exc) -> None:
        self._lock.__exit__(*exc)

    def checkout(self, commit: str) -> None:
        r = repo()
        if not (self.path / ".git").exists():
            if self.path.exists():
                shutil.rmtree(self.path)
            git(r, "worktree", "prune")
            git(r, "worktree", "add", "-q", "--detach", "--force", str(self.path), commit)
            return
        self.abort_am()
        # --force drops local edits; unchanged files keep their mtimes so make stays incremental.
        git(self.path, "checkout", "-q", "--force", "--detach", commit)
        git(self.path, "clean", "-q", "-f", "-d", "-x")

    def abort_am(self) -> None:
        if git(self.path, "rev-parse", "--git-path", "rebase-apply", check=False) and \
                Path(self.path, git(self.path, "rev-parse", "--git-path", "rebase-apply")).exists():
            git(self.path, "am", "--abort", check=False)

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def tree_id(self) -> str:
        return git(self.path, "rev-parse", "HEAD^{tree}")
