"""Apply a patch series onto an exact base commit in a build slot's worktree.

Patches go in one at a time with ``git am --3way`` so a failure names its patch; on any
failure the worktree is put back at the base (nothing half-applied survives). Committer
identity and dates are fixed, so the same series on the same base always produces the
same commit ids.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from orchestrator.errors import ConfigError
from orchestrator.proc import git, run
from orchestrator.series import Series
from orchestrator.source import Worktree

_AM_ENV = {"GIT_COMMITTER_NAME": "kto", "GIT_COMMITTER_EMAIL": "kto@localhost"}


@dataclass
class AppliedSeries:
    base: str
    head: str
    commits: list[str] = field(default_factory=list)   # one per patch, in order
    labels: list[str] = field(default_factory=list)    # 'patch 2/5 "subject"'


def apply_series(wt: Worktree, base: str, series: Series) -> AppliedSeries:
    wt.checkout(base)
    env = {**os.environ, **_AM_ENV}
    applied = AppliedSeries(base=base, head=base)
    for patch in series.patches:
        # Bytes in, as the patch came: a decode/re-encode would change 8-bit patches.
        cp = run(["git", "-C", str(wt.path), "am", "--3way", "--committer-date-is-author-date",
                  "--keep-cr"], env=env, input=patch.data(), check=False)
        head = wt.head()
        if cp.returncode != 0 or head == applied.head:
            # Diagnose on a clean tree at the patch's own base (the patches before it
            # applied): what a failed three-way am leaves behind would answer for it.
            wt.abort_am()
            git(wt.path, "reset", "-q", "--hard", applied.head)
            git(wt.path, "clean", "-q", "-f", "-d")
            # git am --3way skips a patch whose change is already there ("No changes --
            # Patch already applied"): HEAD did not move, which is an error for a series.
            why = ("it is already in the tree (applies in reverse)" if cp.returncode == 0
                   else _why(wt, patch, cp.stdout + cp.stderr))
            wt.checkout(base)
            raise ConfigError(f"{patch.label()} does not apply: {why}")
        applied.head = head
        applied.commits.append(applied.head)
        applied.labels.append(patch.label())
    return applied


def _why(wt: Worktree, patch, output: str) -> str:
    """The most specific reason: 'already in the tree', or the first hunk that fails."""
    # A patch that applies in reverse is already in the tree.
    rev = run(["git", "-C", str(wt.path), "apply", "--check", "--reverse", "-"],
              input=patch.data(), check=False)
    if rev.returncode == 0:
        return "it is already in the tree (applies in reverse)"
    # Without --3way, git names the first hunk that does not match: file and old line.
    plain = run(["git", "-C", str(wt.path), "apply", "--check", "-"], input=patch.data(),
                check=False)
    detail = plain.stderr + output
    m = re.search(r"error: patch failed: (\S+):(\d+)", detail)
    if m:
        path, line = m.group(1), int(m.group(2))
        hunks = [h for h in patch.hunks() if h.path == path]
        for n, h in enumerate(hunks, 1):
            if h.old_start == line:
                head = h.text.splitlines()[0] if h.text else f"@@ -{line}"
                return f"hunk {n} of {path} ({head[:60]})"
        return f"{path} does not match at line {line}"
    m = re.search(r"error: (\S+): (does not exist in index|No such file or directory)", detail)
    if m:
        return f"{m.group(1)} does not exist in the tree"
    lines = [l for l in detail.splitlines() if l.startswith("error:")]
    return lines[0][len("error: "):] if lines else (output.strip().splitlines() or
                                                    ["git am failed"])[0]
