""".ci/run from an empty cache, timed per target, in a fresh clone (issue 17, item 1).

    .venv/bin/python bench/ci_cold.py [--ref REV] [--workdir DIR] [--cache DIR] [--keep]

Clones this repository at REV (default HEAD) into a new directory, points KTO_CACHE at
an empty directory (so the source import, every kernel, ccache, the guest images and the
compiled selftests start cold, as on a new CI machine) and runs the clone's own .ci/run
as CI does (CI=true, no standard input): its two lanes, the tests and the background
build lane, exactly as they overlap there. .ci/run prints each target's wall time
(``ci: make T: N s``) and the build lane's table; this script times the whole and writes
the table to bench/out/ci_cold.md. Budget: 75 min (CI allows 90). ``--cache`` names the
cache directory (it must be empty or absent), e.g. the user's own after moving it aside,
so the measured run leaves a warm cache for the next CI run; by default a temporary one.

Takes as long as a cold CI run (an hour or more on 2 cores) and builds several kernels:
not part of ``make bench``. The clone (and a temporary cache) are removed afterwards
unless --keep.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from table import markdown, write

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# .ci/run as a CI runner starts it, SIGINT at its default action: a bench started in the
# background (``&``) would hand it down ignored, and the tests that press Ctrl-C would
# measure that (the same preexec_fn as those tests').
from tests.signals import sigint_default  # noqa: E402

BUDGET_S = 75 * 60
CI_LIMIT_S = 90 * 60


def target_times(log: str) -> list[tuple[str, int, int]]:
    """(target, seconds, exit status) from .ci/run's ``ci: make T: N s, exit R`` lines."""
    return [(m.group(1), int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^ci: make ([\w.-]+): (\d+) s, exit (\d+)$", log, re.M)]



def fmt(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="HEAD", help="commit to clone (default: HEAD)")
    ap.add_argument("--workdir", type=Path, help="where the clone (and a temporary cache) "
                    "go (default: a new temporary directory)")
    ap.add_argument("--cache", type=Path, help="the KTO_CACHE to fill (must be empty or "
                    "absent; default: a new one in the work directory)")
    ap.add_argument("--keep", action="store_true", help="keep the clone, cache and logs")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kto-ci-cold-", dir=args.workdir))
    clone, logs = work / "clone", work / "logs"
    cache = args.cache.expanduser().resolve() if args.cache else work / "cache"
    if cache.exists() and any(cache.iterdir()):
        raise SystemExit(f"--cache {cache}: not empty (a cold measurement needs an empty cache)")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    # The syzkaller corpus sits beside a checkout (../shared), where the tests look for it:
    # beside the clone too, or make test would skip the corpus tests CI runs.
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    cache.mkdir(parents=True, exist_ok=True)
    logs.mkdir()
    env = {**os.environ, "KTO_CACHE": str(cache), "CI": "true"}
    env.pop("VIRTUAL_ENV", None)

    start = time.monotonic()
    with open(logs / "ci-run.log", "wb") as log:
        rc = subprocess.run([str(clone / ".ci" / "run")], cwd=clone, env=env,
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=sigint_default).returncode
    total = time.monotonic() - start
    text_log = (logs / "ci-run.log").read_text(errors="replace")
    lane = clone / "results" / "ci-build-lane.log"
    if lane.exists():
        shutil.copy(lane, logs / lane.name)
    rows = target_times(text_log)
    print(f".ci/run: exit {rc} in {fmt(total)}", flush=True)

    lines = [f".ci/run from an empty KTO_CACHE, fresh clone of {commit[:12]}, "
             f"{time.strftime('%Y-%m-%d')}, one run on this machine ({os.cpu_count()} cores); "
             "the build lane runs beside the targets (its jobs below).",
             "", *markdown(["target", "wall time", "exit"],
                           [*((f"make {t}", fmt(s), r) for t, s, r in rows),
                            ("**total** (.ci/run)", f"**{fmt(total)}**", rc)])]
    lane_rows = [ln[len("ci: lane: "):] for ln in text_log.splitlines()
                 if ln.startswith("ci: lane: ")]
    if lane_rows:
        lines += ["", "Build lane (`kto build --background`, job / status / key / seconds):",
                  "", "```", *lane_rows, "```"]
    lines += ["",
              f"Budget: {fmt(BUDGET_S)} (CI allows {fmt(CI_LIMIT_S)}); "
              f"total / budget = {total / BUDGET_S:.2f}x."]
    write("ci_cold.md", "\n".join(lines) + "\n")
    if args.keep or args.cache:
        print(f"kept: {work}" + (f"; cache {cache}" if args.cache else ""))
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
        if not args.cache:
            shutil.rmtree(work / "cache", ignore_errors=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
