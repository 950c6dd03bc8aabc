"""The cache and results directories under hostile or unlucky conditions (issue 15, points
3, 7 and 10): prune deletes only what kto made, killed imports leave nothing for long, and
concurrent runs never make a mismatched SSH key pair. Everything on a scratch KTO_CACHE."""
import io
import multiprocessing
import os
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator import retention, source
from orchestrator.results import RunResult, new_run_dir

REPO = Path(__file__).resolve().parents[2]
OLD = time.time() - 90 * 86400


def age(path: Path) -> None:
    for p in [*path.rglob("*"), path]:
        os.utime(p, (OLD, OLD), follow_symlinks=False)


# ---------------------------------------------------------------- 3: prune only kto's own

def test_prune_results_deletes_only_what_kto_made(tmp_path):
    cache, res = tmp_path / "cache", tmp_path / "results"
    cache.mkdir()
    res.mkdir()
    mine = new_run_dir(res, "default")
    RunResult(run="default", directory=mine).write(formats=False)
    (mine / "console.log").write_bytes(b"x" * 100000)
    # A source tree that happens to hold a summary.json, even under a kto-like name.
    theirs = res / "linux-20260101-000000"
    (theirs / "mm").mkdir(parents=True)
    (theirs / "mm" / "hugetlb.c").write_text("int x;\n")
    (theirs / "summary.json").write_text('{"run": "linux", "jobs": []}')
    # A kto-like dir whose summary is not kto's, and a symlink to a directory elsewhere.
    fake = res / "nightly-20260101-000000"
    fake.mkdir()
    (fake / ".kto-results").write_text("")
    (fake / "summary.json").write_text('{"title": null}')
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "summary.json").write_text('{"run": "x"}')
    (res / "x-20260101-000000").symlink_to(outside)
    for p in (mine, theirs, fake, outside):
        age(p)
    out = retention.prune(cache, 0, results_root=res, min_age=0)
    assert [e.path for e in out.removed if e.kind == "results"] == [mine]
    assert not mine.exists()
    assert (theirs / "mm" / "hugetlb.c").exists() and (fake / "summary.json").exists()
    assert (outside / "summary.json").exists()


# ---------------------------------------------------------------- 7: import leftovers

def tiny_tarball(tmp_path: Path) -> Path:
    path = tmp_path / "linux-source-tiny.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, data in (("linux/Makefile", b"VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 1\n"),
                           ("linux/mm/x.c", b"int x;\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_ctrl_c_during_import_clean_up_keeps_the_import(tmp_path, monkeypatch):
    """A Ctrl-C after the commit exists (while deleting the work tree) does not undo or
    misreport the import; the leftover goes at the next import or prune."""
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    tarball = tiny_tarball(tmp_path)
    said = []
    real_rmtree = source.shutil.rmtree

    def interrupted_rmtree(path, *a, **k):
        if Path(path).name.startswith(".import-"):
            raise KeyboardInterrupt
        return real_rmtree(path, *a, **k)

    monkeypatch.setattr(source.shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        source.resolve(source.SourceSpec(tarball=tarball), said.append)
    assert any(m.startswith("source: imported as ") for m in said), said
    root = tmp_path / "cache"
    assert list(root.glob(".import-*"))              # left behind by the interruption
    monkeypatch.setattr(source.shutil, "rmtree", real_rmtree)
    tree = source.resolve(source.SourceSpec(tarball=tarball), said.append)   # next run
    assert tree.version == "6.12.1"
    assert not list(root.glob(".import-*"))


def test_prune_collects_leftovers_of_a_killed_import(tmp_path):
    root = tmp_path / "cache"
    (root / ".import-abc123" / "mm").mkdir(parents=True)
    (root / ".import-abc123" / "mm" / "x.c").write_bytes(b"x" * 4096)
    (root / ".import-abc123.index").write_bytes(b"DIRC")
    out = retention.prune(root, 1 << 40)
    assert not list(root.glob(".import-*"))
    assert {p.name for p in out.leftovers} == {".import-abc123", ".import-abc123.index"}


def test_prune_leaves_a_running_import_alone(tmp_path):
    import fcntl
    root = tmp_path / "cache"
    (root / ".import-running").mkdir(parents=True)
    with open(root / "linux.git.lock", "a") as fh:       # the import holds the source lock
        fcntl.flock(fh, fcntl.LOCK_EX)
        retention.prune(root, 1 << 40)
        assert (root / ".import-running").exists()
    retention.prune(root, 1 << 40)
    assert not (root / ".import-running").exists()


# ---------------------------------------------------------------- 10: SSH key creation race

def _make_key(cache: str, barrier) -> None:
    os.environ["KTO_CACHE"] = cache
    from orchestrator import image
    barrier.wait()
    image.ssh_key()
    if hasattr(image, "host_key"):
        image.host_key()


def test_concurrent_key_creation_gives_matching_pairs(tmp_path):
    import paramiko
    ctx = multiprocessing.get_context("fork")
    for round_ in range(20):
        cache = tmp_path / f"c{round_}"
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_make_key, args=(str(cache), barrier)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        ssh = cache / "ssh"
        priv = paramiko.ECDSAKey.from_private_key_file(str(ssh / "id_ecdsa"))
        assert (ssh / "id_ecdsa.pub").read_text().split()[1] == priv.get_base64(), round_
        assert not [p.name for p in ssh.iterdir() if p.name.startswith(".") or
                    p.suffix == ".tmp"]
        from orchestrator import image
        host_pub = image.host_public_key(ssh / "id_ecdsa")
        # The dropbear-format private key holds the .pub's public point.
        assert host_pub.asbytes()[-65:] in (ssh / "host_ecdsa").read_bytes()


def test_prune_collects_stale_temporaries_of_a_killed_kto(tmp_path):
    """A kto killed while renaming a build, image or selftests entry into place (or while
    pruning) leaves a hidden temporary no listing shows: prune removes the old ones."""
    root = tmp_path / "cache"
    stale = [root / "builds" / "x86_64" / ".abc123.tmp-xyz", root / "images" / "arm64" /
             ".def.tmp-1", root / "selftests" / "x86_64" / ".k.tmp-2", root / ".prune-old-42"]
    fresh = root / "builds" / "x86_64" / ".being-written.tmp-now"
    for p in stale + [fresh]:
        (p / "sub").mkdir(parents=True)
        (p / "sub" / "f").write_bytes(b"x" * 1000)
    for p in stale:
        age(p)
    keep = root / "builds" / "x86_64" / "real-entry"
    (keep).mkdir()
    (keep / "metadata.json").write_text("{}")
    out = retention.prune(root, 1 << 40)
    assert set(out.leftovers) == set(stale)
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and keep.exists()


def test_worktree_drops_an_index_lock_left_by_a_killed_git(tmp_path, monkeypatch):
    """git dies with kto (SIGKILL via PR_SET_PDEATHSIG) and can leave index.lock behind;
    the next kto holding the slot's lock removes it instead of failing every git call."""
    from orchestrator import source
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    gitdir = tmp_path / "cache" / "linux.git" / "worktrees" / "apply"
    gitdir.mkdir(parents=True)
    (gitdir / "index.lock").write_text("")
    tree = tmp_path / "cache" / "trees" / "apply"
    tree.mkdir(parents=True)
    (tree / ".git").write_text(f"gitdir: {gitdir}\n")
    with source.Worktree("apply"):
        assert not (gitdir / "index.lock").exists()
