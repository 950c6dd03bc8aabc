"""The newc writer produces archives that GNU cpio lists and extracts identically."""
import subprocess

from orchestrator.cpio import CpioWriter


def test_cpio_roundtrip(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f.txt").write_text("hello")
    (src / "a" / "l").symlink_to("b/f.txt")
    out = tmp_path / "x.cpio"
    with open(out, "wb") as fh:
        w = CpioWriter(fh)
        w.tree(src, "usr")
        w.file("init", b"#!/bin/sh\n", 0o755)
        w.chardev("dev/console", 5, 1)
        w.close()
    listing = subprocess.run(["cpio", "-itv"], stdin=open(out, "rb"), capture_output=True,
                             text=True).stdout
    assert "usr/a/b/f.txt" in listing and "usr/a/l -> b/f.txt" in listing
    assert any(l.startswith("crw-------") and "dev/console" in l for l in listing.splitlines())
    assert any(l.startswith("-rwxr-xr-x") and l.endswith("init") for l in listing.splitlines())
    dest = tmp_path / "dest"
    dest.mkdir()
    subprocess.run(["cpio", "-id", "--no-absolute-filenames", "--quiet"], cwd=dest,
                   stdin=open(out, "rb"), check=True, capture_output=True)
    assert (dest / "usr/a/b/f.txt").read_text() == "hello"
