"""The arch table: one entry per arch with everything the stages need, consistent with
the files and tools the project installs (scripts/setup-system.sh)."""
import shutil
from pathlib import Path

import pytest

from orchestrator import arch, toolchain, vm
from orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_the_three_arches():
    assert list(arch.ARCHES) == ["x86_64", "arm64", "riscv64"]


@pytest.mark.parametrize("a", arch.ARCHES.values(), ids=list(arch.ARCHES))
def test_entry_is_consistent(a):
    assert (REPO / "kconfigs" / a.kconfig).is_file()
    assert a.image_path.startswith(f"arch/{a.src_arch}/boot/")
    assert shutil.which(a.qemu), f"{a.qemu} is not installed"
    tc = toolchain.for_arch(a)
    assert shutil.which(tc.gcc.split()[-1]), tc.gcc
    # riscv64's userland only exists in trixie; the others come from bookworm.
    assert a.debian_suite == ("trixie" if a.name == "riscv64" else "bookworm")


@pytest.mark.parametrize("a", arch.ARCHES.values(), ids=list(arch.ARCHES))
def test_vm_command_line(a, tmp_path):
    spec = vm.VmSpec(a, tmp_path / "Image", tmp_path / "initrd")
    argv = spec.argv(2222)
    assert argv[0] == a.qemu and "-no-reboot" in argv
    # SSH only on loopback, and a dead kernel ends QEMU at once.
    assert "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22" in argv
    cmdline = argv[argv.index("-append") + 1]
    assert f"console={a.console}" in cmdline and "panic=-1" in cmdline
    assert a.earlycon in cmdline


def test_unknown_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown arch 'mips'.*x86_64, arm64, riscv64"):
        arch.get("mips")
