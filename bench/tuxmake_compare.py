"""Cold and incremental kernel builds: kto vs tuxmake vs plain make (issue 17, items 2-3).

    .venv/bin/python bench/tuxmake_compare.py [--work DIR] [--jobs N] [--user-cache]
                                              [--cold-only | --defconfig | --step-only]

Same source (the default run's commit: kto's worktree, and an export of it for tuxmake,
so tuxmake's long builds never hold kto's worktree), same config (tinyconfig +
the default run's fragments; tuxmake gets them with --kconfig tinyconfig --kconfig-add,
and the two final .config files are compared), same compiler (ccache gcc: tuxmake
``--wrapper ccache`` with a ccache of its own, empty at first, like kto's in a new
cache), same -j, tuxmake ``--runtime null`` (no containers here) and targets
``config kernel modules``. kto runs in a cache of its own (WORK/kto-cache, cold: source
import and worktree are made first and not timed).

1. cold: kto's build (kconfig + make + store) vs tuxmake's;
2. one step: the 2-patch example series on one mm/*.c file (patches/selftest) applied,
   then kto's incremental build (persistent O= dir + ccache) vs tuxmake rebuilding the
   patched tree in its usual clean build directory (warm ccache), and the floor: plain
   ``make`` (kto's reproducer command line) redoing the same step in kto's build
   directory, its ccache told to recompile (CCACHE_RECACHE).

``--defconfig`` replaces 2 by item 2's second ratio: kto's cold build vs tuxmake
building what an LKFT-style user builds, ``defconfig`` plus the same fragments (the
same debug options: KASAN, lockdep, the workloads' options), cold, in the same sitting.
``--step-only`` measures 2 alone, in a --work directory where the cold builds ran before
(kto's kernel stored, tuxmake's ccache warm), e.g. after ``--defconfig``.

Every build holds the user's kto build lock (~/.cache/kto/build.lock, or KTO_CACHE's)
so it never runs beside another kto build on this machine. Takes two cold builds
(~15 min each on 2 cores): not part of ``make bench``. ``--user-cache`` skips kto's cold
build: it works in the user's cache, where the default kernel is stored, and quotes that
build's own recorded time (another sitting: say so when quoting it); the step is then
measured in the user's persistent build directory, left at the base afterwards.
Rows are written to bench/out/tuxmake_compare.md as they come.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SERIES = REPO / "patches/selftest/selftest.mbox"
OUT = REPO / "bench" / "out" / "tuxmake_compare.md"


def quiet(_message: str) -> None:
    """kto's progress callback, silenced: the rows are the output."""


def user_build_lock() -> Path:
    env = os.environ.get("KTO_CACHE")
    root = Path(env).expanduser().resolve() if env else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kto"
    return root / "build.lock"


@contextlib.contextmanager
def build_slot(lock: Path):
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Table:
    def __init__(self, head: str):
        self.head = head
        self.rows: list[str] = []
        self.notes: list[str] = []

    def add(self, row: str) -> None:
        self.rows.append(row)
        self.write()
        print(row, flush=True)

    def write(self) -> None:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        text = (self.head + "\n\n| build | seconds | ratio | goal | note |\n"
                "|---|---:|---:|---:|---|\n" + "\n".join(self.rows) + "\n")
        if self.notes:
            text += "\n" + "\n".join(self.notes) + "\n"
        OUT.write_text(text)


def tuxmake(tree: Path, build_dir: Path, out_dir: Path, fragments: list[Path], jobs: int,
            ccache_dir: Path, log: Path, base: str = "tinyconfig") -> tuple[float, int]:
    argv = [str(Path(sys.executable).parent / "tuxmake"), "--runtime", "null",
            "--target-arch", "x86_64", "--toolchain", "gcc", "--wrapper", "ccache",
            "--kconfig", base, *[x for f in fragments for x in ("--kconfig-add", str(f))],
            "--jobs", str(jobs), "--compression-type", "none", "-C", str(tree),
            "--build-dir", str(build_dir), "--output-dir", str(out_dir),
            "config", "kernel", "modules"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCACHE_")}
    env.update(CCACHE_DIR=str(ccache_dir), CCACHE_MAXSIZE="20G")
    shutil.rmtree(build_dir, ignore_errors=True)      # tuxmake's usual clean build dir
    shutil.rmtree(out_dir, ignore_errors=True)
    t0 = time.monotonic()
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(argv) + "\n")
        fh.flush()
        rc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    return time.monotonic() - t0, rc


def config_options(path: Path) -> set[str]:
    """A .config's settings, without the compiler's name: tuxmake's gcc toolchain calls
    Debian's gcc by its triplet name (x86_64-linux-gnu-gcc, the same binary)."""
    return {ln for ln in path.read_text().splitlines()
            if ln.startswith("CONFIG_") and not ln.startswith("CONFIG_CC_VERSION_TEXT=")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp") / f"kto-tuxmake-{os.getuid()}",
                    help="work directory (kto's own cache, tuxmake's build dirs; reused)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--cold-only", action="store_true", help="stop after the cold builds")
    mode.add_argument("--defconfig", action="store_true",
                      help="after the cold builds, tuxmake's cold build of defconfig plus "
                      "the same fragments (item 2's second ratio) instead of the step")
    mode.add_argument("--step-only", action="store_true",
                      help="only the one-file step, in a --work directory where the cold "
                      "builds ran before")
    ap.add_argument("--user-cache", action="store_true",
                    help="use the user's kto cache instead of a cold one of its own; kto's "
                    "cold time is then the stored default kernel's own build time")
    args = ap.parse_args()
    lock = user_build_lock()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.user_cache:
        os.environ["KTO_CACHE"] = str(work / "kto-cache")
        for k in [k for k in os.environ if k.startswith("CCACHE_")]:
            del os.environ[k]

    from orchestrator import arch as arch_mod, build, config, source, toolchain
    from orchestrator.proc import run

    cfg = config.load(REPO / "runs.yaml")["default"]
    a = arch_mod.get("x86_64")
    tc = toolchain.for_arch(a)
    fragments = cfg.fragments_for(a.name)
    table = Table(f"Kernel builds, x86_64, default run's config (tinyconfig + "
                  f"{', '.join(f.name for f in fragments)}), {tc.version}, -j{args.jobs}, "
                  f"{time.strftime('%Y-%m-%d')}, one run each on this machine "
                  f"({os.cpu_count()} cores).")
    src = source.resolve(cfg.source, print)

    def build_input(wt, patches):
        return build.BuildInput(arch=a, toolchain=tc, tree=wt.path, commit=wt.head(),
                                tree_id=wt.tree_id(), base_commit=src.commit,
                                patches=patches, fragments=fragments,
                                runs_dir=cfg.runs_dir)

    def make(argv, **env):
        with build_slot(lock):
            t0 = time.monotonic()
            run(argv, env={**build.build_env(), **env})
            return time.monotonic() - t0

    # tuxmake builds an export of the same commit: its long builds then never hold kto's
    # worktree, which other kto runs on this machine need.
    tux_tree = work / "tux-tree"
    if not (tux_tree / ".kto-commit").exists() or \
            (tux_tree / ".kto-commit").read_text() != src.commit:
        shutil.rmtree(tux_tree, ignore_errors=True)
        tux_tree.mkdir()
        archive = subprocess.Popen(["git", "--git-dir", str(source.repo()), "archive",
                                    src.commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tux_tree)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit("git archive of the source commit failed")
        (tux_tree / ".kto-commit").write_text(src.commit)

    # 1. cold
    with source.Worktree(a.name) as wt:
        wt.checkout(src.commit)
        inp = build_input(wt, [])
        if args.user_cache:
            base = build.lookup(inp)
            if base is None:
                raise SystemExit("--user-cache: the default x86_64 kernel is not in the store")
            kto_cold = base.metadata["duration_s"]
            note = (f"the stored kernel's own cold build (its metadata.json, finished "
                    f"{base.metadata['finished']}, {base.metadata.get('objects_compiled')} "
                    "objects): another sitting than tuxmake's")
        else:
            with build_slot(lock):
                t0 = time.monotonic()
                base = build.build(inp, quiet, jobs=args.jobs)
                kto_cold = time.monotonic() - t0
            note = f"{base.status}, {base.metadata.get('objects_compiled')} objects"
    if not base.ok:
        raise SystemExit(f"kto build failed: {base.error}")
    if args.step_only:
        if base.status != "cached" or not (work / "tux-ccache").is_dir():
            raise SystemExit(f"--step-only: no earlier cold builds in {work}")
        return step_rows(table, base, src, a, tux_tree, work, fragments, args.jobs, lock,
                         build_input, make)
    with build_slot(lock):
        tux_cold, rc = tuxmake(tux_tree, work / "tux-build", work / "tux-out", fragments,
                               args.jobs, work / "tux-ccache", work / "tux-cold.log")
    if rc != 0:
        raise SystemExit(f"tuxmake cold build failed (exit {rc}): see {work}/tux-cold.log")
    same = config_options(work / "tux-out" / "config") == config_options(base.artifact("config"))
    table.add(f"| cold: tuxmake | {tux_cold:.0f} | 1.00x | | clean build dir, empty "
              f"ccache; final .config {'identical to' if same else 'DIFFERS from'} kto's "
              "but for CC_VERSION_TEXT |")
    table.add(f"| cold: kto | {kto_cold:.0f} | {kto_cold / tux_cold:.2f}x | <= 1.05x | "
              f"{note} |")

    if args.cold_only:
        return 0
    if args.defconfig:
        return defconfig_row(table, tux_tree, work, fragments, args.jobs, lock, kto_cold,
                             config_options(base.artifact("config")))
    return step_rows(table, base, src, a, tux_tree, work, fragments, args.jobs, lock,
                     build_input, make)


def step_rows(table, base, src, a, tux_tree: Path, work: Path, fragments: list[Path],
              jobs: int, lock: Path, build_input, make) -> int:
    from orchestrator import build, source
    from orchestrator.patches import apply_series
    from orchestrator.proc import run
    from orchestrator.series import load_series

    def base_state(wt, base):
        """kto's build directory at the base, as a plain make leaves it (untimed; another
        build may have left it elsewhere, even with another .config)."""
        wt.checkout(src.commit)
        config = Path(base.metadata["build_dir"]) / ".config"
        if config.read_text() != base.artifact("config").read_text():
            config.write_text(base.artifact("config").read_text())
        make(shlex.split(base.metadata["reproducer"]))

    # 2. one incremental step: the series applied, then kto's build (its store entry
    # removed: a real rebuild in the persistent directory) and the floor, plain make
    # redoing the same step there (ccache told to recompile rather than hit).
    series = load_series(SERIES)
    with source.Worktree(a.name) as wt:
        argv = shlex.split(base.metadata["reproducer"])
        base_state(wt, base)
        applied = apply_series(wt, src.commit, series)
        diff = run(["git", "-C", str(wt.path), "diff", src.commit, applied.head]).stdout
        inp2 = build_input(wt, applied.commits)
        key2 = build.build_key(inp2, build.configure(inp2, quiet))
        shutil.rmtree(build.store_dir(a, key2), ignore_errors=True)
        with build_slot(lock):
            t0 = time.monotonic()
            step = build.build(inp2, quiet, jobs=jobs)
            kto_inc = time.monotonic() - t0
        base_state(wt, base)
        apply_series(wt, src.commit, series)
        floor = make(argv, CCACHE_RECACHE="1")
        base_state(wt, base)          # the shared build directory left at the base
    run(["git", "apply", "-p1", "-"], cwd=tux_tree, input=diff)
    try:
        with build_slot(lock):
            tux_inc, rc = tuxmake(tux_tree, work / "tux-build", work / "tux-out", fragments,
                                  jobs, work / "tux-ccache", work / "tux-step.log")
    finally:
        run(["git", "apply", "-R", "-p1", "-"], cwd=tux_tree, input=diff)
    table.add(f"| step: tuxmake rebuild of the patched tree | {tux_inc:.0f} | 1.00x | | "
              f"clean build dir, warm ccache, exit {rc} |")
    table.add(f"| step: kto incremental | {kto_inc:.1f} | {kto_inc / tux_inc:.2f}x | "
              f"<= 0.5x | {step.status}, {step.metadata.get('objects_compiled')} objects |")
    table.add(f"| step: floor, plain `make` in kto's build dir | {floor:.1f} | "
              f"{kto_inc / floor:.2f}x (kto / floor) | <= 1.10x | "
              f"`make bzImage modules` only, CCACHE_RECACHE=1 |")
    return 0


def defconfig_row(table: Table, tux_tree: Path, work: Path, fragments: list[Path], jobs: int,
                  lock: Path, kto_cold: float, kto_options: set[str]) -> int:
    """tuxmake's cold build of defconfig + the same fragments, in a build directory and a
    ccache of its own (empty: nothing from the tinyconfig build is reused)."""
    shutil.rmtree(work / "tux-def-ccache", ignore_errors=True)
    with build_slot(lock):
        secs, rc = tuxmake(tux_tree, work / "tux-def-build", work / "tux-def-out", fragments,
                           jobs, work / "tux-def-ccache", work / "tux-defconfig.log",
                           base="defconfig")
    if rc != 0:
        raise SystemExit(f"tuxmake defconfig build failed (exit {rc}): see "
                         f"{work}/tux-defconfig.log")
    options = config_options(work / "tux-def-out" / "config")
    wanted = {o for o in kto_options if o.endswith("=y")}
    missing = sorted(o.split("=")[0] for o in wanted - options)
    table.add(f"| cold: tuxmake, `defconfig` + the same fragments | {secs:.0f} | 1.00x | | "
              f"{len(options)} options set; of kto's {len(wanted)} `=y` options "
              f"{len(wanted) - len(missing)} also set |")
    table.add(f"| cold: kto's config / that | {kto_cold:.0f} | {kto_cold / secs:.2f}x | "
              f"<= 0.35x | the kto cold build above |")
    if missing:
        table.notes.append("kto's `=y` options defconfig + fragments does not set: "
                           + ", ".join(missing[:40]) + (" ..." if len(missing) > 40 else ""))
        table.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
