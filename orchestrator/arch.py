"""Everything kto knows about an architecture, in one table (no if-chains elsewhere)."""
from __future__ import annotations

import platform
from dataclasses import dataclass

from orchestrator.errors import ConfigError


@dataclass(frozen=True)
class Arch:
    name: str            # kto's name, used in runs.yaml and paths
    kernel_arch: str     # make ARCH=
    src_arch: str        # arch/<src_arch>/ in the tree
    uname: str           # `uname -m` in the guest (and on a native host)
    gnu_prefix: str      # cross toolchain prefix (Debian gcc-<triplet>)
    image_target: str    # make target producing the boot image
    image_path: str      # boot image, relative to the build directory
    qemu: str            # QEMU binary
    machine: tuple[str, ...]  # QEMU machine/cpu/firmware arguments
    console: str         # kernel console device
    earlycon: str        # early console on the kernel command line
    debian_arch: str     # dpkg architecture of the guest userland
    debian_suite: str    # Debian suite that has the guest userland for this arch
    kconfig: str         # arch fragment in kconfigs/

    def cross_prefix(self) -> str:
        """'' when the host runs this arch natively, else the Debian cross prefix."""
        return "" if platform.machine() == self.uname else self.gnu_prefix


ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch(name="x86_64", kernel_arch="x86_64", src_arch="x86", uname="x86_64",
         gnu_prefix="x86_64-linux-gnu-", image_target="bzImage",
         image_path="arch/x86/boot/bzImage", qemu="qemu-system-x86_64",
         machine=("-M", "q35", "-cpu", "max"), console="ttyS0", earlycon="earlyprintk=serial",
         debian_arch="amd64", debian_suite="bookworm", kconfig="x86_64.config"),
    Arch(name="arm64", kernel_arch="arm64", src_arch="arm64", uname="aarch64",
         gnu_prefix="aarch64-linux-gnu-", image_target="Image",
         image_path="arch/arm64/boot/Image", qemu="qemu-system-aarch64",
         machine=("-M", "virt", "-cpu", "max"), console="ttyAMA0",
         earlycon="earlycon=pl011,0x9000000", debian_arch="arm64",
         debian_suite="bookworm", kconfig="arm64.config"),
    Arch(name="riscv64", kernel_arch="riscv", src_arch="riscv", uname="riscv64",
         gnu_prefix="riscv64-linux-gnu-", image_target="Image",
         image_path="arch/riscv/boot/Image", qemu="qemu-system-riscv64",
         machine=("-M", "virt", "-bios", "default"), console="ttyS0", earlycon="earlycon=sbi",
         debian_arch="riscv64", debian_suite="trixie", kconfig="riscv64.config"),
)}


def get(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise ConfigError(f"unknown arch {name!r} (known: {', '.join(ARCHES)})") from None
