""".ci/run from an empty cache: each make target timed in a fresh clone (issue 17, item 1).

    .venv/bin/python bench/ci_cold.py [--ref REV] [--workdir DIR] [--keep] [--only T,...]

Clones this repository at REV (default HEAD) into a new directory, points KTO_CACHE at
an empty directory beside it (so the source import, every kernel, ccache, the guest
images and the compiled selftests start cold, as on a new CI machine) and runs
``make setup`` and then every ``make TARGET`` line of the clone's own .ci/run, in order,
with CI=true and no standard input, timing each. A failing target is recorded and the
next one still runs, so one table shows every target's time. Logs go to
WORKDIR/logs/; the table to bench/out/ci_cold.md. Budget: 75 min (CI allows 90).

Takes as long as a cold CI run (an hour or more on 2 cores) and builds several kernels:
not part of ``make bench``. The clone and its cache are removed afterwards unless --keep.
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
BUDGET_S = 75 * 60
CI_LIMIT_S = 90 * 60


def ci_targets(ci_run: Path) -> list[str]:
    """The make targets .ci/run runs, in order (lines ``make TARGET`` outside comments)."""
    targets = []
    for line in ci_run.read_text().splitlines():
        m = re.fullmatch(r"\s*make\s+([\w.-]+)\s*", line.split("#", 1)[0])
        if m:
            targets.append(m.group(1))
    if not targets:
        raise SystemExit(f"{ci_run}: no 'make TARGET' line found")
    return targets


def fmt(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", default="HEAD", help="commit to clone (default: HEAD)")
    ap.add_argument("--workdir", type=Path, help="where the clone and its empty cache go "
                    "(default: a new temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the clone, cache and logs")
    ap.add_argument("--only", metavar="T,...", help="only these targets (a check of the "
                    "script itself: the table is printed, not written)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kto-ci-cold-", dir=args.workdir))
    clone, cache, logs = work / "clone", work / "cache", work / "logs"
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", args.ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    cache.mkdir()
    logs.mkdir()
    env = {**os.environ, "KTO_CACHE": str(cache), "CI": "true"}
    env.pop("VIRTUAL_ENV", None)

    rows = []
    start = time.monotonic()
    targets = ["setup", *ci_targets(clone / ".ci" / "run")]
    if args.only:
        targets = [t for t in targets if t in args.only.split(",")]
    for target in targets:
        t0 = time.monotonic()
        with open(logs / f"{target}.log", "wb") as log:
            rc = subprocess.run(["make", target], cwd=clone, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT).returncode
        rows.append((target, time.monotonic() - t0, rc))
        print(f"{target}: exit {rc} in {fmt(rows[-1][1])}", flush=True)
    total = time.monotonic() - start

    lines = [f".ci/run from an empty KTO_CACHE, fresh clone of {commit[:12]}, "
             f"{time.strftime('%Y-%m-%d')}, one run on this machine ({os.cpu_count()} cores).",
             "", *markdown(["target", "wall time", "exit"],
                           [*((f"make {t}", fmt(s), rc) for t, s, rc in rows),
                            ("**total**", f"**{fmt(total)}**",
                             max(rc for _, _, rc in rows))])]
    lines += ["",
              f"Budget: {fmt(BUDGET_S)} (CI allows {fmt(CI_LIMIT_S)}); "
              f"total / budget = {total / BUDGET_S:.2f}x."]
    text = "\n".join(lines) + "\n"
    write("ci_cold.md", text, save=not args.only)
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(rc == 0 for _, _, rc in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
