"""The compiler for an arch: Debian's gcc (cross where needed), always through ccache."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from orchestrator import cache
from orchestrator.arch import Arch
from orchestrator.errors import KtoError
from orchestrator.proc import run


@dataclass(frozen=True)
class Toolchain:
    prefix: str         # CROSS_COMPILE
    gcc: str            # e.g. aarch64-linux-gnu-gcc
    version: str        # first line of `gcc --version`: part of every build key

    def make_vars(self, arch: Arch) -> list[str]:
        return [f"ARCH={arch.kernel_arch}", f"CROSS_COMPILE={self.prefix}",
                f"CC=ccache {self.gcc}", "HOSTCC=ccache gcc"]

    def tool(self, name: str) -> str:
        """A binutils tool for this arch, e.g. tool('addr2line')."""
        return f"{self.prefix}{name}"


def for_arch(arch: Arch) -> Toolchain:
    prefix = arch.cross_prefix()
    gcc = f"{prefix}gcc"
    if not shutil.which(gcc):
        raise KtoError(f"{gcc}: compiler for {arch.name} not found (run scripts/setup-system.sh)")
    version = run([gcc, "--version"]).stdout.splitlines()[0]
    return Toolchain(prefix=prefix, gcc=gcc, version=version)


def build_env() -> dict[str, str]:
    """Environment for kernel builds: a ccache of kto's own, sized for several configs."""
    env = dict(os.environ)
    env.setdefault("CCACHE_DIR", str(cache.cache_dir("ccache")))
    env.setdefault("CCACHE_MAXSIZE", "20G")
    # Worktrees and build directories are siblings at fixed depths under the cache:
    # relative paths let objects be shared between build directories.
    env.setdefault("CCACHE_BASEDIR", str(cache.cache_root()))
    env["KBUILD_BUILD_TIMESTAMP"] = "kto"
    env["KBUILD_BUILD_USER"] = "kto"
    env["KBUILD_BUILD_HOST"] = "kto"
    env["LC_ALL"] = "C"
    return env
