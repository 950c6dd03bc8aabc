"""Guest image: an initramfs made from Debian packages (busybox-static, dropbear and the
libraries it links), kto's init, a finit_module loader, and the SSH public key.

Cached by content: the .deb file names (package versions), init, loader source, compiler
and key. Modules of a particular build travel in a second cpio appended at boot.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import paramiko

from orchestrator import cache
from orchestrator.arch import Arch
from orchestrator.cpio import CpioWriter
from orchestrator.errors import KtoError
from orchestrator.proc import run
from orchestrator.toolchain import Toolchain

GUEST_PACKAGES = ["busybox-static", "dropbear-bin", "bash-static"]
# Statically linked: their Depends (bash-static: passwd, debianutils) are install-time
# policy, not runtime needs, and would drag PAM and perl into the image.
STATIC_PACKAGES = {"busybox-static", "bash-static"}


@dataclass(frozen=True)
class GuestImage:
    arch: str
    key: str
    initramfs: Path
    ssh_key: Path      # private key (0600) whose public half is in the image


def ssh_key() -> Path:
    """The cache's SSH client key pair, generated once (ECDSA: dropbear 2022 and paramiko
    agree). Safe against several kto processes starting at once (see _key_pair)."""
    def write(key: paramiko.ECDSAKey, tmp: Path) -> None:
        key.write_private_key_file(str(tmp))
    return _key_pair("id_ecdsa", write)


def host_key() -> Path:
    """The guests' SSH host key (dropbear's format; ``.pub`` beside it in OpenSSH's): kto
    builds the image, so it knows the key and pins it (vm.py) instead of trusting
    whatever answers on the forwarded port."""
    def write(key: paramiko.ECDSAKey, tmp: Path) -> None:
        tmp.write_bytes(dropbear_ecdsa_private(key))
    return _key_pair("host_ecdsa", write)


def host_public_key(ssh_key_path: Path) -> paramiko.PKey:
    """The pinned host key of guests whose image holds ``ssh_key_path``'s public half
    (both live in the cache's ssh/ directory)."""
    path = ssh_key_path.parent / "host_ecdsa.pub"
    try:
        kind, b64 = path.read_text().split()[:2]
        return paramiko.ECDSAKey(data=base64.b64decode(b64))
    except (OSError, ValueError, paramiko.SSHException) as e:
        raise KtoError(f"{path}: no usable guest host key ({e}); building the guest image makes one")


def _key_pair(name: str, write_private) -> Path:
    """``ssh/<name>`` and ``ssh/<name>.pub``, made once under a lock: each file is written
    to a unique temporary and renamed into place, the public half first, so whoever sees
    the private key also sees its own public key (never one of another process)."""
    d = cache.cache_dir("ssh")
    path, pub = d / name, d / f"{name}.pub"
    if path.exists() and pub.exists():
        return path
    with cache.locked(d / f"{name}.lock"):
        if path.exists() and pub.exists():
            return path
        key = paramiko.ECDSAKey.generate(bits=256)
        cache.atomic_write(pub, f"{key.get_name()} {key.get_base64()} kto\n", 0o644)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=d)
        os.close(fd)
        try:
            os.chmod(tmp, 0o600)
            write_private(key, Path(tmp))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path


def _ssh_string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _ssh_mpint(n: int) -> bytes:
    b = n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b""
    return _ssh_string(b)


def dropbear_ecdsa_private(key: paramiko.ECDSAKey) -> bytes:
    """``key`` in dropbear's host key file format (what dropbearkey writes): the SSH wire
    encoding of the key type, curve, public point and private scalar."""
    pub = key.verifying_key.public_numbers()
    point = b"\x04" + pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big")
    d = key.signing_key.private_numbers().private_value
    return (_ssh_string(b"ecdsa-sha2-nistp256") + _ssh_string(b"nistp256") + _ssh_string(point)
            + _ssh_mpint(d))


def _deb_field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "-f", str(deb), name], check=False).stdout.strip()


def _download(pkg: str, debian_arch: str, dest: Path) -> Path:
    found = sorted(dest.glob(f"{pkg}_*_{debian_arch}.deb")) + sorted(dest.glob(f"{pkg}_*_all.deb"))
    if found:
        return found[-1]
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cp = run(["apt-get", "download", "-q", f"{pkg}:{debian_arch}"], cwd=Path(tmp), check=False)
        debs = list(Path(tmp).glob("*.deb"))
        if cp.returncode != 0 or not debs:
            err = (cp.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
            raise KtoError(f"guest image: cannot download {pkg}:{debian_arch}: {err} "
                           "(run scripts/setup-system.sh)")
        final = dest / debs[0].name
        os.replace(debs[0], final)
        return final


def _depends(deb: Path) -> str:
    """A .deb's Pre-Depends + Depends, remembered beside it (its name holds its version):
    asking dpkg-deb on every run cost a tenth of a cached run's own time."""
    memo = deb.with_name(deb.name + ".depends")
    try:
        return memo.read_text()
    except OSError:
        pass
    deps = ", ".join(filter(None, (_deb_field(deb, "Pre-Depends"), _deb_field(deb, "Depends"))))
    cache.atomic_write(memo, deps)
    return deps


def fetch_packages(arch: Arch) -> list[Path]:
    """Download GUEST_PACKAGES for the guest arch and their Depends closure (.debs cached)."""
    dest = cache.cache_dir("debs", arch.debian_arch)
    todo, seen, debs = list(GUEST_PACKAGES), set(), []
    while todo:
        pkg = todo.pop(0)
        if pkg in seen:
            continue
        seen.add(pkg)
        deb = _download(pkg, arch.debian_arch, dest)
        debs.append(deb)
        if pkg in STATIC_PACKAGES:
            continue
        deps = _depends(deb)
        for dep in filter(None, (d.strip() for d in deps.split(","))):
            # First alternative; drop version constraints and :any qualifiers.
            todo.append(re.split(r"[\s(|:]", dep.split("|")[0].strip())[0])
    return sorted(debs)


def _guest_file(name: str) -> bytes:
    return resources.files("orchestrator.guest").joinpath(name).read_bytes()


def build_loader(toolchain: Toolchain, dest: Path) -> Path:
    """Compile the static finit_module loader for the guest arch."""
    src = dest / "finit_module.c"
    src.write_bytes(_guest_file("finit_module.c"))
    out = dest / "kto-insmod"
    run([toolchain.gcc, "-static", "-O2", "-o", str(out), str(src)])
    return out


def build_image(arch: Arch, toolchain: Toolchain, progress=print) -> GuestImage:
    key_path = ssh_key()
    host_path = host_key()
    debs = fetch_packages(arch)
    h = hashlib.sha256()
    for part in [arch.name, toolchain.version, *[d.name for d in debs], _guest_file("init"),
                 _guest_file("finit_module.c"), key_path.with_suffix(".pub").read_bytes(),
                 host_path.read_bytes()]:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    key = h.hexdigest()[:20]
    final = cache.cache_root() / "images" / arch.name / key
    image = GuestImage(arch.name, key, final / "initramfs.cpio", key_path)
    if image.initramfs.exists():
        return image
    # Two kto processes (kto build beside kto run) must not both build it: the second
    # would replace the directory under the first one's guest.
    with cache.locked(final.with_suffix(".lock")):
        if not image.initramfs.exists():
            _build_image(arch, toolchain, debs, final, key_path, host_path, progress)
    return image


def _build_image(arch: Arch, toolchain: Toolchain, debs: list[Path], final: Path,
                 key_path: Path, host_path: Path, progress) -> None:
    progress(f"image: building {arch.name} guest initramfs from {len(debs)} Debian packages")
    with cache.atomic_dir(final) as tmp:
        root = tmp / "root"
        root.mkdir()
        for deb in debs:
            run(["dpkg-deb", "-x", str(deb), str(root)])
        _merge_usr(root)
        _check_libraries(root, toolchain)
        loader = build_loader(toolchain, tmp)
        with open(tmp / "initramfs.cpio", "wb") as fh:
            w = CpioWriter(fh)
            # Only what a guest needs from the packages: binaries and libraries.
            for sub in ("usr/bin", "usr/sbin", "usr/lib"):
                if (root / sub).exists():
                    w.tree(root / sub, sub)
            for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
                w.symlink(link, target)
            if (root / "usr/lib64").exists():
                w.tree(root / "usr/lib64", "usr/lib64")
                w.symlink("lib64", "usr/lib64")
            for d in ("dev", "proc", "sys", "tmp", "run", "etc/dropbear", "var/log"):
                w.dir(d)
            w.chardev("dev/console", 5, 1)
            w.chardev("dev/null", 1, 3, 0o666)
            # The selftests' bash scripts (#!/bin/bash): bash-static is /bin/bash-static in
            # bookworm and /usr/bin/bash-static in trixie; both end up in usr/bin.
            if (root / "usr/bin/bash-static").exists() and not (root / "usr/bin/bash").exists():
                w.symlink("usr/bin/bash", "bash-static")
            w.file("init", _guest_file("init"), 0o755)
            w.file("usr/bin/kto-insmod", loader.read_bytes(), 0o755)
            w.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
            w.file("etc/group", b"root:x:0:\n")
            w.file("etc/shells", b"/bin/sh\n")
            w.file("etc/inittab", b"::ctrlaltdel:/bin/reboot -f\n")
            w.dir("root", 0o700)
            w.dir("root/.ssh", 0o700)
            w.file("root/.ssh/authorized_keys", key_path.with_suffix(".pub").read_bytes(), 0o600)
            w.file("etc/dropbear/kto_host_key", host_path.read_bytes(), 0o600)
            w.close()
        shutil.rmtree(root)


def _merge_usr(root: Path) -> None:
    """Debian bookworm ships /bin and /lib; trixie is merged-/usr. Fold into /usr."""
    for top in ("bin", "sbin", "lib", "lib64"):
        src = root / top
        if src.is_dir() and not src.is_symlink():
            dest = root / "usr" / top
            dest.mkdir(parents=True, exist_ok=True)
            for item in src.iterdir():
                target = dest / item.name
                if target.is_dir() and item.is_dir() and not item.is_symlink():
                    shutil.copytree(item, target, symlinks=True, dirs_exist_ok=True)
                    shutil.rmtree(item)
                else:
                    os.replace(item, target)
            src.rmdir()


def _check_libraries(root: Path, toolchain: Toolchain) -> None:
    """Every shared library dropbear needs must be in the image: fail here, not at boot."""
    dropbear = root / "usr/sbin/dropbear"
    if not dropbear.exists():
        raise KtoError("guest image: dropbear-bin has no /usr/sbin/dropbear")
    libs = {p.name for p in (root / "usr/lib").rglob("*.so*")}
    out = run([toolchain.tool("readelf"), "-d", str(dropbear)]).stdout
    missing = [n for n in re.findall(r"Shared library: \[(.+?)\]", out) if n not in libs]
    if missing:
        raise KtoError(f"guest image: dropbear needs {', '.join(missing)}, not in the packages")


def modules_initramfs(image: GuestImage, modules_cpio: Path, dest: Path) -> Path:
    """The guest image with a build's modules appended (the kernel unpacks both)."""
    with open(dest, "wb") as out:
        for part in (image.initramfs, modules_cpio):
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out)
    return dest
