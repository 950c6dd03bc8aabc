"""Hostile patches (issue 15, points 5 and 6): patch bytes reach git am untouched, and a
failed apply is diagnosed on a clean tree, not on what the failed three-way am left."""
import subprocess
from pathlib import Path

import pytest

from orchestrator import source
from orchestrator.errors import ConfigError
from orchestrator.patches import apply_series
from orchestrator.proc import git
from orchestrator.series import load_series


def sh(cwd, *argv, input=None):
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True,
                          input=input).stdout.decode("utf-8", "replace").strip()


@pytest.fixture
def tree(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    return make_tree("mm/x.c", b"a\nb\nc\nd\n")


def resolved(t, ref):
    return source.resolve(source.SourceSpec(tarball=None, git=t, ref=ref)).commit


def test_latin1_patch_bytes_are_applied_as_they_are(tree, tmp_path):
    """A Latin-1 byte in an added line: the tree kto builds is the tree the author
    committed (git am of the same bytes), not one with the byte re-encoded as UTF-8."""
    base = sh(tree, "git", "rev-parse", "HEAD")
    (tree / "mm" / "x.c").write_bytes(b"a\nb\n/* caf\xe9 */\nc\nd\n")
    sh(tree, "git", "commit", "-qam", "mm: a comment in Latin-1")
    want = sh(tree, "git", "rev-parse", "HEAD^{tree}")
    mbox = tmp_path / "latin1.patch"
    mbox.write_bytes(subprocess.run(["git", "-C", str(tree), "format-patch", "--stdout", "-1"],
                                    check=True, capture_output=True).stdout)
    assert b"caf\xe9" in mbox.read_bytes()
    series = load_series(mbox)
    assert series.patches[0].data() == mbox.read_bytes()
    with source.Worktree("apply") as wt:
        applied = apply_series(wt, resolved(tree, base), series)
        assert git(wt.path, "rev-parse", "HEAD^{tree}") == want
        assert (wt.path / "mm" / "x.c").read_bytes() == b"a\nb\n/* caf\xe9 */\nc\nd\n"
        assert len(applied.commits) == 1


def symlink_series(tree: Path, tmp_path: Path) -> Path:
    """1/2 adds the symlink lnk -> mm; 2/2 creates lnk/new.c (through the symlink), which
    git refuses ('beyond a symbolic link')."""
    (tree / "lnk").symlink_to("mm")
    sh(tree, "git", "add", "lnk")
    sh(tree, "git", "commit", "-qm", "mm: add a link")
    p1 = sh(tree, "git", "format-patch", "--stdout", "--subject-prefix=PATCH 1/2", "-1")
    p2 = """From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Dev <dev@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH 2/2] mm: write through the link

---
 lnk/new.c | 2 ++
 1 file changed, 2 insertions(+)

diff --git a/lnk/new.c b/lnk/new.c
new file mode 100644
index 000000000000..1234567890ab
--- /dev/null
+++ b/lnk/new.c
@@ -0,0 +1,2 @@
+x
+y
--
2.39.2
"""
    mbox = tmp_path / "symlink.mbox"
    mbox.write_text(p1 + "\n" + p2)
    sh(tree, "git", "reset", "-q", "--hard", "HEAD~1")
    return mbox


def test_failed_three_way_am_is_not_called_already_applied(tree, tmp_path):
    base = sh(tree, "git", "rev-parse", "HEAD")
    mbox = symlink_series(tree, tmp_path)
    with source.Worktree("apply") as wt:
        with pytest.raises(ConfigError) as e:
            apply_series(wt, resolved(tree, base), load_series(mbox))
        assert wt.head() == resolved(tree, base)
        assert git(wt.path, "status", "--porcelain", "--ignored") == ""
    msg = str(e.value)
    assert msg.startswith('patch 2/2 "mm: write through the link" does not apply: '), msg
    assert "already in the tree" not in msg, msg
    assert "beyond a symbolic link" in msg, msg
