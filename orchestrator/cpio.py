"""A minimal newc cpio writer, so initramfs images are built without root or fakeroot:
ownership, modes and device nodes are whatever we say they are."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class CpioWriter:
    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        name = name.lstrip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.ino += 1
        self.fh.write(header + name.encode() + b"\0")
        self.fh.write(b"\0" * ((4 - (len(header) + len(name) + 1) % 4) % 4))
        self.fh.write(data)
        self.fh.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name: str, perm: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def tree(self, root: Path, prefix: str = "") -> None:
        """Add a host directory tree (files, dirs, symlinks), owned by root."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            base = prefix.strip("/") if rel == "." else f"{prefix.strip('/')}/{rel}".strip("/")
            if base:
                self.dir(base, stat.S_IMODE(os.lstat(dirpath).st_mode) or 0o755)
            for name in sorted(filenames) + sorted(d for d in dirnames
                                                   if os.path.islink(os.path.join(dirpath, d))):
                full = os.path.join(dirpath, name)
                dest = f"{base}/{name}" if base else name
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self.symlink(dest, os.readlink(full))
                elif stat.S_ISREG(st.st_mode):
                    self.file(dest, Path(full).read_bytes(), stat.S_IMODE(st.st_mode))

    def close(self) -> None:
        self._entry("TRAILER!!!", 0)
