"""Kernel build: configure (kconfig stage) and compile out-of-tree with ccache.

Each (arch, kconfig set) has a persistent build directory, so rebuilding after a small
source change (a patch, a bisect step) only recompiles what changed. Finished builds are
copied into a content-addressed store keyed by (source tree, patches, final .config,
compiler): an identical build is reused instantly. Every build has a ``metadata.json``
with the key, config hash, compiler, duration, exit status and a reproducer command line.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator import cache, kconfig
from orchestrator.arch import Arch
from orchestrator.cpio import CpioWriter
from orchestrator.errors import ConfigError, KtoError
from orchestrator.proc import die_with_parent
from orchestrator.toolchain import Toolchain, build_env

KCONFIG_BASES = ("tinyconfig", "allnoconfig", "defconfig")


@dataclass
class BuildInput:
    """Everything that determines a kernel build."""
    arch: Arch
    toolchain: Toolchain
    tree: Path                 # checked-out source (worktree)
    commit: str                # HEAD of the tree, after patches
    tree_id: str               # git tree id: the content of the source actually built
    base_commit: str           # the source commit before patches
    patches: list[str]         # applied patch ids, in order
    fragments: list[Path]
    kconfig_base: str = "tinyconfig"
    # Names the persistent build directory. One per arch by default: Kbuild rebuilds only
    # what a config change touches, and ccache serves switching back and forth.
    variant: str = "main"
    # The runs file's directory: metadata.json names the fragments under it relative to
    # it (kconfigs/base.config), never by a path of this machine. Not part of the key
    # (the key hashes the final .config, whatever the fragments' paths).
    runs_dir: Path | None = None


@dataclass
class BuildResult:
    status: str                # "ok" | "cached" | "failed"
    key: str
    dir: Path | None           # artifact directory in the store (None when failed)
    duration: float
    log: Path | None
    error: str = ""            # first error lines of a failed build
    metadata: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "cached")

    def artifact(self, name: str) -> Path:
        return self.dir / name


def fragment_names(fragments: list[Path], runs_dir: Path | None) -> list[str]:
    """How metadata.json records ``fragments``: relative to ``runs_dir`` when they lie
    under it, else by their file name alone (no absolute path of one machine)."""
    root = runs_dir.resolve() if runs_dir is not None else None
    names = []
    for p in fragments:
        try:
            names.append(Path(p).resolve().relative_to(root).as_posix() if root else p.name)
        except ValueError:
            names.append(p.name)
    return names


def _make_argv(inp: BuildInput, out: Path, *targets: str, jobs: int | None = None) -> list[str]:
    argv = ["make", "-s" if not targets or targets[0].endswith("config") else "",
            "-C", str(inp.tree), f"O={out}", *inp.toolchain.make_vars(inp.arch)]
    if jobs:
        argv.append(f"-j{jobs}")
    return [a for a in argv if a] + list(targets)


def configure(inp: BuildInput, progress=print) -> str:
    """Return the final .config text for ``inp`` (tinyconfig + fragments + olddefconfig),
    raising ConfigError naming every requested option that did not survive."""
    if inp.kconfig_base not in KCONFIG_BASES:
        raise ConfigError(f"unknown kconfig base {inp.kconfig_base!r} "
                          f"(known: {', '.join(KCONFIG_BASES)})")
    requested = kconfig.merge([kconfig.parse_fragment(p) for p in inp.fragments])
    cached = _kconfig_result(inp, requested)
    if cached.exists():
        return cached.read_text()
    scratch = cache.cache_dir("kconfig", "scratch", inp.arch.name)
    env = build_env()
    with cache.locked(scratch.with_suffix(".lock")):
        _run_checked(_make_argv(inp, scratch, inp.kconfig_base), env, "kconfig")
        config = scratch / ".config"
        config.write_text(config.read_text() + kconfig.render(requested))
        _run_checked(_make_argv(inp, scratch, "olddefconfig"), env, "kconfig")
        text = config.read_text()
    problems = kconfig.verify(requested, kconfig.read_config(text))
    if problems:
        index = kconfig.KconfigIndex(inp.tree, inp.arch.src_arch)
        problems = kconfig.verify(requested, kconfig.read_config(text), index)
        detail = "; ".join(str(p) for p in problems)
        raise ConfigError(f"{inp.arch.name}: {len(problems)} kconfig option(s) rejected: {detail}")
    cache.atomic_write(cached, text)
    return text


def _kconfig_result(inp: BuildInput, requested) -> Path:
    """Where configure() keeps the final .config of (tree, arch, compiler, base, options)."""
    key = hashlib.sha256("\0".join([
        inp.tree_id, inp.arch.name, inp.toolchain.version, inp.kconfig_base,
        kconfig.render(requested)]).encode()).hexdigest()[:20]
    return cache.cache_dir("kconfig", "results") / f"{key}.config"


def lookup(inp: BuildInput) -> BuildResult | None:
    """The stored build of ``inp`` when its final .config and the build are both cached,
    else None. Runs nothing and never reads ``inp.tree``: a run of a kernel already built
    needs no worktree checkout (pipeline.build_job)."""
    if inp.kconfig_base not in KCONFIG_BASES:
        return None
    t0 = time.monotonic()
    config = _kconfig_result(inp, kconfig.merge([kconfig.parse_fragment(p)
                                                 for p in inp.fragments]))
    if not config.exists():
        return None
    key = build_key(inp, config.read_text())
    final = store_dir(inp.arch, key)
    try:
        meta = json.loads((final / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    return BuildResult("cached", key, final, time.monotonic() - t0, final / "build.log",
                       metadata=meta)


def _run_checked(argv: list[str], env: dict, what: str) -> None:
    cp = subprocess.run(argv, env=env, text=True, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        preexec_fn=die_with_parent(signal.SIGTERM))   # make: stop with kto
    if cp.returncode != 0:
        tail = " | ".join(cp.stdout.strip().splitlines()[-3:])
        raise KtoError(f"{what}: {' '.join(argv[-1:])} failed: {tail}")


def build_key(inp: BuildInput, config_text: str) -> str:
    parts = {
        "arch": inp.arch.name,
        "tree": inp.tree_id,
        "patches": inp.patches,
        "config": kconfig.config_hash(config_text),
        "compiler": inp.toolchain.version,
        "targets": [inp.arch.image_target, "modules"],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def store_dir(arch: Arch, key: str) -> Path:
    return cache.cache_root() / "builds" / arch.name / key


_ERROR_LINE = re.compile(r"(error:|Error \d+|\*\*\*|undefined reference|No rule to make)")
_CC_LINE = re.compile(r"^\s+(CC|AS|LD|AR)\s*(\[M\])?\s+(\S+)")


def first_errors(log_text: str, limit: int = 8) -> str:
    lines = [l for l in log_text.splitlines() if _ERROR_LINE.search(l)]
    return "\n".join(lines[:limit])


def build(inp: BuildInput, progress=print, jobs: int | None = None) -> BuildResult:
    """Configure and build ``inp``; reuse the store entry when the key already exists."""
    t0 = time.monotonic()
    config_text = configure(inp, progress)
    key = build_key(inp, config_text)
    final = store_dir(inp.arch, key)
    if (final / "metadata.json").exists():
        meta = json.loads((final / "metadata.json").read_text())
        return BuildResult("cached", key, final, time.monotonic() - t0, final / "build.log",
                           metadata=meta)

    # One kernel build at a time on this machine (each already uses every core); other
    # kto processes wait here rather than thrash the CPU and the shared build directory.
    with _build_slot(progress):
        if (final / "metadata.json").exists():     # built by whoever held the slot
            meta = json.loads((final / "metadata.json").read_text())
            return BuildResult("cached", key, final, time.monotonic() - t0,
                               final / "build.log", metadata=meta)
        return _build_locked(inp, config_text, key, final, t0, progress, jobs)


# The lock file of this process's builds. A background lane (kto build --background) has a
# lock of its own and runs at the lowest CPU priority (19, below the nice 10 of every kto
# make and the 0 of guests): its builds take mostly the cores the foreground (tests, kto
# run) leaves idle, and never make a foreground build wait. Two
# processes building the same kernel still meet on its worktree's lock and the store.
_SLOT_LOCK = "build.lock"


def run_in_background() -> None:
    """This process's builds become a background lane (see _SLOT_LOCK); for kto build."""
    global _SLOT_LOCK
    _SLOT_LOCK = "build-background.lock"
    # make, gcc and ld inherit it. It ranks the lane below processes of its own session
    # only: with sched autogroups each session shares the cores as a whole, so a lane
    # started by setsid also lowers its session's autogroup (.ci/run does).
    os.nice(19)


@contextlib.contextmanager
def _build_slot(progress):
    lock = cache.cache_root() / _SLOT_LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("build: waiting for another kto build on this machine to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_locked(inp: BuildInput, config_text: str, key: str, final: Path, t0: float,
                  progress, jobs: int | None) -> BuildResult:
    jobs = jobs or os.cpu_count() or 1
    out = cache.cache_dir("build-dirs", f"{inp.arch.name}-{inp.variant}")
    env = build_env()
    config = out / ".config"
    if not config.exists() or config.read_text() != config_text:
        config.write_text(config_text)   # only when changed: keeps make incremental
    argv = _make_argv(inp, out, inp.arch.image_target, "modules", jobs=jobs)
    log_path = out / "kto-build.log"
    from orchestrator import buildprogress
    est = buildprogress.estimate(out, config_text, _expected_objects(inp.arch))
    progress(f"build: {inp.arch.name} {key} in {out}; "
             + (est.source if est.total is None else f"~{est.total} objects to compile "
                f"(from {est.source})"))
    rc, objects = _run_make(argv, env, log_path, progress, est)
    duration = time.monotonic() - t0
    meta = {
        "key": key, "arch": inp.arch.name, "status": "ok" if rc == 0 else "failed",
        "exit_status": rc, "duration_s": round(duration, 1), "objects_compiled": objects,
        "compiler": inp.toolchain.version, "config_hash": kconfig.config_hash(config_text),
        "source_commit": inp.base_commit, "commit": inp.commit, "tree_id": inp.tree_id,
        "patches": inp.patches, "fragments": fragment_names(inp.fragments, inp.runs_dir),
        "kconfig_base": inp.kconfig_base, "build_dir": str(out),
        "reproducer": shlex.join(argv),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if rc != 0:
        log_text = log_path.read_text(errors="replace")
        return BuildResult("failed", key, None, duration, log_path,
                           error=first_errors(log_text) or log_text.strip().splitlines()[-1:][0]
                           if log_text.strip() else f"make exited {rc}", metadata=meta)
    with cache.atomic_dir(final) as tmp:
        _collect(inp, out, tmp, env)
        shutil.copy(log_path, tmp / "build.log")
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    _remember_objects(inp.arch, objects)
    buildprogress.record(out, objects, duration, est)
    return BuildResult("ok", key, final, duration, final / "build.log", metadata=meta)


def _collect(inp: BuildInput, out: Path, dest: Path, env: dict) -> None:
    """Copy the boot image, vmlinux, System.map, .config and a modules cpio into ``dest``."""
    shutil.copy(out / inp.arch.image_path, dest / "image")
    for name in ("vmlinux", "System.map", ".config"):
        shutil.copy(out / name, dest / name.lstrip("."))
    staging = dest / "modules-staging"
    _run_checked(_make_argv(inp, out, "modules_install", f"INSTALL_MOD_PATH={staging}",
                            "INSTALL_MOD_STRIP=1"), env, "modules_install")
    # Unstripped modules stay available for symbolization.
    release = (out / "include/config/kernel.release").read_text().strip()
    (dest / "kernel.release").write_text(release + "\n")
    with open(dest / "modules.cpio", "wb") as fh:
        w = CpioWriter(fh)
        # usr/lib: the guest image is merged-/usr, and a "lib" directory in this second
        # archive would replace the image's lib -> usr/lib symlink when unpacked.
        w.tree(staging / "lib" / "modules", "usr/lib/modules")
        w.close()
    mods = dest / "modules"
    mods.mkdir()
    for ko in out.rglob("*.ko"):
        shutil.copy(ko, mods / ko.name)
    shutil.rmtree(staging)


def _run_make(argv: list[str], env: dict, log_path: Path, progress, est):
    """Run make, logging everything; a progress line every 20 s (every 2 s when it
    rewrites a terminal status line), each compiled object with -v."""
    from orchestrator import buildprogress, verbosity
    count = 0
    last = ""
    done = threading.Event()
    t0 = time.monotonic()
    every = 2 if verbosity.LIVE else 20
    if verbosity.LEVEL >= 2:
        progress(f"build: $ {shlex.join(argv)}")

    def ticker():
        while not done.wait(every):
            progress(buildprogress.line(est, count, time.monotonic() - t0, last))

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    with open(log_path, "w", buffering=1) as log:   # line-buffered: tail -f works
        log.write("$ " + shlex.join(argv) + "\n")
        log.flush()
        # Niced: guests run beside builds (scheduler.py) and have timeouts to keep.
        # SIGTERM when kto dies (even by SIGKILL): make passes it on to the compilers.
        # With kto run --keep, Ctrl-C releases the kept guests and must not reach a build
        # running meanwhile: make gets its own session (kto still kills it on any exit).
        from orchestrator import interactive
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", preexec_fn=_make_child(),
                                start_new_session=interactive.keeping())
        try:
            for line in proc.stdout:
                log.write(line)
                m = _CC_LINE.match(line)
                if m:
                    count += 1
                    last = m.group(3)
                    if verbosity.LEVEL >= 2:
                        progress(f"build: {line.strip()}")
            rc = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            done.set()
    return rc, count


def _make_child():
    """make's preexec_fn: niced, and SIGTERM when kto dies (make passes it on)."""
    die = die_with_parent(signal.SIGTERM)

    def preexec() -> None:
        os.nice(10)
        die()
    return preexec


def _stop(proc: subprocess.Popen) -> None:
    """Stop make and its compilers now: SIGTERM (make kills its children and deletes
    half-written targets), SIGKILL if it is not gone within 5 s."""
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _objects_file(arch: Arch) -> Path:
    return cache.cache_root() / "builds" / arch.name / "objects-last-cold"


def _expected_objects(arch: Arch) -> int | None:
    try:
        return int(_objects_file(arch).read_text())
    except (OSError, ValueError):
        return None


def _remember_objects(arch: Arch, objects: int) -> None:
    # Only a near-cold build tells how many objects a full build has.
    if objects > (_expected_objects(arch) or 0):
        cache.atomic_write(_objects_file(arch), str(objects))
