"""``--source PATH[@REV]``: the developer's own kernel tree as a run's source, without
editing runs.yaml.

kto tests commits (the build key and every reproducer name one), so a tree with
uncommitted changes to tracked files is refused rather than tested as something that
has no id. ``PATH@REV`` tests that commit whatever the working tree holds. Untracked
files are ignored: they are not part of any commit.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.source import SourceSpec


def parse(text: str) -> SourceSpec:
    """``PATH`` (its HEAD, clean) or ``PATH@REV`` -> a git SourceSpec."""
    path, ref = Path(text).expanduser(), None
    if not path.is_dir() and "@" in text:
        where, _, ref = text.rpartition("@")
        path = Path(where).expanduser()
        if not ref:
            raise ConfigError(f"--source {text}: empty revision after '@'")
    if not path.is_dir():
        raise ConfigError(f"--source {text}: {path} is not a directory")
    top = _git(path, text, "rev-parse", "--show-toplevel")
    tree = Path(top)
    if ref is None:
        dirty = _git(tree, text, "status", "--porcelain", "--untracked-files=no").splitlines()
        if dirty:
            files = [l[3:] for l in dirty]
            raise ConfigError(
                f"--source {text}: {tree} has uncommitted changes ({len(files)} file(s): "
                f"{', '.join(files[:3])}{', ...' if len(files) > 3 else ''}); kto tests "
                f"commits: commit (or stash) them, or give {text}@REV to test a commit")
    rev = ref or "HEAD"
    sha = _git(tree, text, "rev-parse", "-q", "--verify", f"{rev}^{{commit}}", check=False)
    if not sha:
        raise ConfigError(f"--source {text}: no commit {rev!r} in {tree}")
    return SourceSpec(tarball=None, git=tree, ref=sha)


def _git(tree: Path, text: str, *args: str, check: bool = True) -> str:
    cp = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                        errors="replace")
    if cp.returncode != 0 and check:
        why = (cp.stderr.strip().splitlines() or [f"git exited {cp.returncode}"])[0]
        raise ConfigError(f"--source {text}: {tree} is not a git tree ({why})")
    return cp.stdout.rstrip("\n") if cp.returncode == 0 else ""
