"""Applying series with git am in a throwaway worktree of the source cache (a small real
git tree as the source, its own KTO_CACHE): success, a hunk that does not match, a patch
already in the tree; never a dirty cache or a half-applied worktree."""
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import source
from orchestrator.errors import ConfigError
from orchestrator.patches import apply_series
from orchestrator.proc import git
from orchestrator.series import load_series

REPO = Path(__file__).resolve().parent.parent


def sh(cwd, *argv):
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def tree(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    body = "".join(f"int f{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(60))
    t = make_tree("mm/hugetlb.c", body)
    base = sh(t, "git", "rev-parse", "HEAD").strip()
    for n, i in enumerate((5, 40, 50), 1):
        text = (t / "mm" / "hugetlb.c").read_text().replace(f"return {i};", f"return {i} + 1;")
        (t / "mm" / "hugetlb.c").write_text(text)
        sh(t, "git", "commit", "-qam", f"mm/hugetlb: bump f{i} ({n})")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(sh(t, "git", "format-patch", "--stdout", f"{base}..HEAD"))
    return t, base, mbox


def resolved(t, ref):
    return source.resolve(source.SourceSpec(tarball=None, git=t, ref=ref)).commit


def test_series_applies_and_cache_stays_clean(tree):
    t, base, mbox = tree
    commit = resolved(t, base)
    with source.Worktree("apply") as wt:
        applied = apply_series(wt, commit, load_series(mbox))
        assert len(applied.commits) == 3
        assert git(wt.path, "rev-parse", "HEAD^{tree}") == sh(t, "git", "rev-parse",
                                                              "HEAD^{tree}").strip()
        # Same series on the same base: same commit ids (fixed committer identity).
        again = apply_series(wt, commit, load_series(mbox))
        assert again.commits == applied.commits
        wt.checkout(commit)
    # The cache repository is bare: nothing of the series is checked out there.
    assert git(source.repo(), "rev-parse", "--is-bare-repository") == "true"
    assert not (source.repo() / "rebase-apply").exists()


def test_hunk_that_does_not_match_names_patch_and_hunk(tree):
    t, base, mbox = tree
    # Change line 40's function on a new base so patch 2/3's only hunk no longer matches.
    text = (t / "mm" / "hugetlb.c").read_text()
    sh(t, "git", "checkout", "-q", base)
    (t / "mm" / "hugetlb.c").write_text(
        text.replace("return 40 + 1;", "return 400;").replace("return 5 + 1;", "return 5;")
        .replace("return 50 + 1;", "return 50;"))
    sh(t, "git", "commit", "-qam", "conflicting base")
    other = resolved(t, "HEAD")
    with source.Worktree("apply") as wt:
        with pytest.raises(ConfigError) as e:
            apply_series(wt, other, load_series(mbox))
        assert wt.head() == other                       # nothing half-applied
        assert git(wt.path, "status", "--porcelain") == ""
    msg = str(e.value)
    assert msg.startswith('patch 2/3 "mm/hugetlb: bump f40 (2)" does not apply: '
                          "hunk 1 of mm/hugetlb.c (@@ -"), msg


def test_patch_already_in_tree(tree):
    t, base, mbox = tree
    head = resolved(t, "HEAD")
    with source.Worktree("apply") as wt:
        with pytest.raises(ConfigError, match=r'^patch 1/3 "mm/hugetlb: bump f5 \(1\)" does not '
                                              r"apply: it is already in the tree"):
            apply_series(wt, head, load_series(mbox))


def test_kto_apply_cli(tree, tmp_path):
    t, base, mbox = tree
    resolved(t, base)   # fetch the base into the cache
    env = {"KTO_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "apply", str(mbox), "--base",
                         base], capture_output=True, text=True, cwd=REPO, env=env)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[-1].startswith(f"applied 3 patch(es) onto {base[:12]}: ")
    head = resolved(t, "HEAD")
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "apply", str(mbox), "--base",
                         head], capture_output=True, text=True, cwd=REPO, env=env)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert cp.stderr.strip().endswith("it is already in the tree (applies in reverse)")
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "apply", str(mbox), "--base",
                         "nope"], capture_output=True, text=True, cwd=REPO, env=env)
    assert cp.returncode == 2 and "--base nope: no such commit" in cp.stderr
