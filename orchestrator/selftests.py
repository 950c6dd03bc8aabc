"""The mm selftests a workload runs, built from the same kernel tree as the kernel.

Static binaries from ``tools/testing/selftests/mm``, compiled with the arch's (cross)
gcc and the tree's own uapi headers (the host's are too old), never through the
selftests Makefile (it writes into the source tree). Which programs: every file named by
a ``kind: selftest`` workload (``argv[0]`` and ``uses``). Results are cached per (tree,
arch, compiler, program list, and the sources of kto's race programs when the list names
any); a program that does not compile from this tree is recorded in ``build-errors/`` and
its tests become errors, not the whole run.

kto's own race programs (``orchestrator/guest/race/<name>.c``, the mm-race workload) are
built the same way, from kto's source instead of the tree's, against the tree's uapi
headers: a workload names them like any selftest program.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

from orchestrator import cache, workload
from orchestrator.arch import Arch
from orchestrator.errors import KtoError
from orchestrator.proc import die_with_parent
from orchestrator.toolchain import Toolchain

MM = "tools/testing/selftests/mm"
RECIPE_VERSION = "2"
CFLAGS = ["-static", "-O2", "-g", "-Wall", "-D_GNU_SOURCE=", "-U_FORTIFY_SOURCE"]
LIBS = ["-lrt", "-lpthread", "-lm"]
RUNNER = "kto-selftest"     # orchestrator/guest/kto-selftest, copied next to the programs
# orchestrator/guest/kto-compat as compat/<name>: tools the scripts use that busybox lacks.
COMPAT = ("pgrep", "killall")


def wanted_files(names: list[str] | None = None, directory: Path | None = None) -> list[str]:
    """Files the selftest workloads (all of them, or ``names``) need from the mm dir."""
    files: set[str] = set()
    for n in names if names is not None else workload.available(directory):
        wl = workload.load(n, directory)
        for t in wl.tests:
            files.update(t.files())
    return sorted(files)


def race_source(program: str) -> Path | None:
    """kto's own source for ``program`` (orchestrator/guest/race/), if it is one of them."""
    src = Path(str(resources.files("orchestrator.guest").joinpath("race", f"{program}.c")))
    return src if src.is_file() else None


def _race_sources(files: list[str]) -> bytes:
    """The sources of the race programs among ``files`` and the headers they share;
    nothing when ``files`` names none of them (an edit to a race program rebuilds only
    the builds that include it)."""
    programs = sorted({src for f in files if (src := race_source(f)) is not None})
    if not programs:
        return b""
    headers = sorted(programs[0].parent.glob("*.h"))
    return b"".join(p.name.encode() + b"\0" + p.read_bytes()
                    for p in sorted(programs + headers))


def sources_for(mm: Path, program: str) -> list[Path]:
    """The recipe: <t>.c + vm_util.c + thp_settings.c (+ uffd-common.c for uffd tests)."""
    main = mm / f"{program}.c"
    srcs = [main, mm / "vm_util.c", mm / "thp_settings.c"]
    if '"uffd-common.h"' in main.read_text(errors="replace"):
        srcs.insert(1, mm / "uffd-common.c")
    return srcs


def compile_argv(tree: Path, toolchain: Toolchain, program: str, out: Path) -> list[str]:
    mm = tree / MM
    race = race_source(program)
    srcs = [race] if race else sources_for(mm, program)
    return [toolchain.gcc, *CFLAGS, f"-I{tree}", "-isystem", str(tree / "tools/include/uapi"),
            "-o", str(out), *map(str, srcs), *LIBS]


def cache_key(tree_id: str, arch: Arch, toolchain: Toolchain, files: list[str]) -> str:
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, tree_id, arch.name, toolchain.version, *CFLAGS, *files,
                 _runner().decode(), _compat().decode(),
                 _race_sources(files).decode(errors="replace")):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _runner() -> bytes:
    return resources.files("orchestrator.guest").joinpath(RUNNER).read_bytes()


def _compat() -> bytes:
    return resources.files("orchestrator.guest").joinpath("kto-compat").read_bytes()


def support_files() -> list[str]:
    """kto's own guest files that go along with every selftest workload."""
    return [RUNNER, *(f"compat/{c}" for c in COMPAT)]


def stored(tree_id: str, arch: Arch, toolchain: Toolchain,
           files: list[str] | None = None) -> Path | None:
    """What build() would return when its result is cached already (it needs no tree
    then), else None."""
    files = sorted(files if files is not None else wanted_files())
    key = cache_key(tree_id, arch, toolchain, files)
    final = cache.cache_root() / "selftests" / arch.name / key
    return final if (final / "manifest.json").exists() else None


def build(tree: Path, tree_id: str, arch: Arch, toolchain: Toolchain, progress=print,
          files: list[str] | None = None) -> Path:
    """Build (or reuse) the selftest programs and scripts; returns their directory."""
    files = sorted(files if files is not None else wanted_files())
    mm = tree / MM
    if not mm.is_dir():
        raise KtoError(f"selftests: {mm} does not exist in the kernel tree")
    key = cache_key(tree_id, arch, toolchain, files)
    final = cache.cache_root() / "selftests" / arch.name / key
    if (final / "manifest.json").exists():
        return final
    with cache.locked(final.with_suffix(".lock")):
        if (final / "manifest.json").exists():
            return final
        progress(f"selftests: building {len(files)} mm selftest files for {arch.name}")
        t0 = time.monotonic()
        built, failed = [], []
        with cache.atomic_dir(final) as tmp:
            errors = tmp / "build-errors"
            for f in files:
                if f.endswith(".sh"):
                    if not (mm / f).exists():
                        failed.append(f)
                        errors.mkdir(exist_ok=True)
                        (errors / f"{f}.txt").write_text(f"{MM}/{f} is not in this tree\n")
                        continue
                    shutil.copyfile(mm / f, tmp / f)
                    (tmp / f).chmod(0o755)
                    built.append(f)
                    continue
                if race_source(f) is None and not (mm / f"{f}.c").exists():
                    failed.append(f)
                    errors.mkdir(exist_ok=True)
                    (errors / f"{f}.txt").write_text(f"{MM}/{f}.c is not in this tree\n")
                    continue
                argv = compile_argv(tree, toolchain, f, tmp / f)
                cp = subprocess.run(argv, capture_output=True, text=True,
                                    env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
                                    preexec_fn=die_with_parent())
                if cp.returncode != 0:
                    failed.append(f)
                    errors.mkdir(exist_ok=True)
                    (errors / f"{f}.txt").write_text(" ".join(argv) + "\n" + cp.stderr)
                    progress(f"selftests: {f} failed to build for {arch.name}: "
                             f"{(cp.stderr.strip().splitlines() or ['?'])[-1]}")
                else:
                    built.append(f)
            (tmp / RUNNER).write_bytes(_runner())
            (tmp / RUNNER).chmod(0o755)
            (tmp / "compat").mkdir()
            for c in COMPAT:
                (tmp / "compat" / c).write_bytes(_compat())
                (tmp / "compat" / c).chmod(0o755)
            (tmp / "manifest.json").write_text(json.dumps({
                "key": key, "arch": arch.name, "tree_id": tree_id,
                "compiler": toolchain.version, "built": built, "failed": failed,
                "cflags": CFLAGS, "seconds": round(time.monotonic() - t0, 1)}, indent=2))
        progress(f"selftests: {len(built)} built, {len(failed)} failed in "
                 f"{time.monotonic() - t0:.0f}s")
    return final
