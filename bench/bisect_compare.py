"""Bisect three ways (issue 17, item 6): `kto bisect` vs `git bisect run` driving
`kto run` by hand vs every patch in turn, on the same series, machine and cache.

    .venv/bin/python bench/bisect_compare.py [--series FILE ...] [--run NAME] [--work DIR]

For each series (default: the 8-patch kasan-vmalloc example and the 16-patch
vmalloc-oops-16 series):

1. kto bisect SERIES --run RUN, measured (builds, boots, wall time, verdict, confidence);
2. what a developer does without it: the series committed on the base in a git tree of
   their own (a shared clone of kto's source repository, ``git am --3way`` patch by
   patch, the cover letter left out as b4 am does), one
   ``kto run RUN --source TREE`` at the tip to see which report titles to look for, then
   ``git bisect start TIP BASE`` and ``git bisect run`` with a step script that runs
   ``kto run RUN --source TREE`` and greps the step's summary.json for those titles
   (exit 1: bad, 0: good, 125: kto could not build or boot: skip). The base is taken as
   good without a run, as a developer usually does; one run per step, no retries.
3. every patch in turn, computed (not run): the base and each of the n steps built and
   run once, at this kto bisect's measured mean build and run times.

Both measured rows start from the same build store: before each, every stored x86_64
kernel of one of the series' trees (a step of kto's, or a commit of the developer's tree)
is moved aside, so each row builds its steps as it would for a new series; kernels kto
bisect rebuilt are the same keys, the rest are put back at the end. ccache is warm for
both (the step objects were compiled before, as in a developer's loop): kto's row runs
first, so the second row gets no ccache hits the first did not. Writes
bench/out/bisect_compare.md. Takes the length of the bisects (minutes each, warm ccache):
not part of ``make bench``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bisect_bench import _bisect  # noqa: E402  (kto bisect SERIES --run RUN, its bisect.json)
from table import markdown, write  # noqa: E402

SERIES = ["patches/examples/kasan-vmalloc.mbox", "patches/examples/vmalloc-oops-16.mbox"]
KTO = [sys.executable, "-m", "orchestrator"]

# The developer's git bisect run script: kto run on the commit git checked out, then the
# titles seen at the tip looked for in the step's summary.json (JSON-escaped, fixed strings).
STEP_SCRIPT = """#!/bin/sh
# git bisect run: exit 1 = bad (the tip's report), 0 = good, 125 = skip (no build/boot).
res=$(mktemp -d "$KTO_BISECT_RESULTS/step.XXXXXX")
"$@" --results "$res" -q
rc=$?
[ "$rc" -eq 2 ] && exit 125
grep -qFf "$KTO_BISECT_TITLES" "$res"/*/summary.json && exit 1
exit 0
"""

GIT_ID = {"GIT_AUTHOR_NAME": "kto bench", "GIT_AUTHOR_EMAIL": "bench@kto.invalid",
          "GIT_COMMITTER_NAME": "kto bench", "GIT_COMMITTER_EMAIL": "bench@kto.invalid"}


def git(tree: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    cp = subprocess.run(["git", "-C", str(tree), *args], check=check, capture_output=True,
                        input=input, env={**os.environ, **GIT_ID})
    return cp.stdout.decode(errors="replace").strip()


def developer_tree(work: Path, base: str, series: Path) -> tuple[Path, list[str]]:
    """The series as commits on BASE in a tree of the developer's own: (tree, commits)."""
    from orchestrator import source
    from orchestrator.series import load_series
    tree = work / f"tree-{series.stem}"
    if not (tree / ".git").exists():
        subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout",
                        str(source.repo()), str(tree)], check=True)
    git(tree, "bisect", "reset")
    git(tree, "am", "--abort", check=False)      # an am a killed earlier run left
    git(tree, "checkout", "-q", "-f", "-B", "series", base)
    # One patch at a time, the cover letter left out (as b4 am does; git am stops at it).
    for patch in load_series(series).patches:
        git(tree, "am", "-q", "--3way", input=patch.data())
    commits = git(tree, "rev-list", "--reverse", f"{base}..HEAD").split()
    return tree, commits


def stored_kernels(store: Path, tree_ids: set[str]) -> list[Path]:
    """Entries of the build store STORE of kernels built from one of these trees."""
    found = []
    for meta in store.glob("*/metadata.json"):
        try:
            if json.loads(meta.read_text()).get("tree_id") in tree_ids:
                found.append(meta.parent)
        except (OSError, ValueError):
            continue
    return found


def move_aside(entries: list[Path], aside: Path) -> None:
    aside.mkdir(parents=True, exist_ok=True)
    for e in entries:
        dest = aside / e.name
        if dest.exists():           # moved aside before and rebuilt since: keep the new
            shutil.rmtree(e)
        else:
            e.rename(dest)


def put_back(aside: Path, store: Path) -> None:
    for e in aside.iterdir() if aside.exists() else []:
        if (store / e.name).exists():
            shutil.rmtree(e)
        else:
            e.rename(store / e.name)


def kto_run(tree: Path, run: str, results: Path) -> tuple[int, dict]:
    results.mkdir(parents=True)
    rc = subprocess.run([*KTO, "run", run, "--source", str(tree), "--results", str(results),
                         "-q"], cwd=REPO, stdin=subprocess.DEVNULL).returncode
    [summary] = results.glob("*/summary.json")
    return rc, json.loads(summary.read_text())


def git_bisect(tree: Path, commits: list[str], base: str, run: str, work: Path) -> dict:
    """The developer's loop, timed from the tip's run to git bisect's answer."""
    results = work / f"git-bisect-{tree.name}"
    shutil.rmtree(results, ignore_errors=True)
    t0 = time.monotonic()
    rc, tip = kto_run(tree, run, results / "tip")
    titles = sorted({r["title"] for j in tip["jobs"] for r in j.get("reports", [])})
    if not titles:
        raise SystemExit(f"{tree.name}: the tip shows no report (kto run exit {rc})")
    titles_file = work / f"titles-{tree.name}.txt"
    titles_file.write_text("".join(json.dumps(t)[1:-1] + "\n" for t in titles))
    script = work / "bisect-step.sh"
    script.write_text(STEP_SCRIPT)
    script.chmod(0o755)
    git(tree, "bisect", "start", commits[-1], base)
    env = {**os.environ, **GIT_ID, "KTO_BISECT_RESULTS": str(results),
           "KTO_BISECT_TITLES": str(titles_file), "PYTHONPATH": str(REPO)}
    out = subprocess.run(["git", "-C", str(tree), "bisect", "run", str(script), *KTO, "run",
                          run, "--source", str(tree)], env=env, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - t0
    (work / f"git-bisect-{tree.name}.log").write_text(out.stdout + out.stderr)
    git(tree, "bisect", "reset")
    first_bad = next((line.split()[0] for line in out.stdout.splitlines()
                      if line.endswith("is the first bad commit")), None)
    summaries = [tip] + [json.loads(p.read_text())
                         for p in sorted(results.glob("step.*/*/summary.json"))]
    jobs = [j for s in summaries for j in s["jobs"]]
    return {"titles": titles, "seconds": seconds, "runs": len(summaries),
            # kto run's build status: "cached" (a store hit) or "ok" (built now)
            "builds": sum(j["build"].get("status") not in ("cached", None) for j in jobs),
            "first_bad": commits.index(first_bad) + 1 if first_bad in commits else None}


def every_patch(data: dict) -> tuple[int, int, float]:
    """The base and each step built once and run once, at this bisect's measured means."""
    steps, n = data["steps"], len(data["patches"])
    first_bad = min([s["step"] for s in steps if s["hit"]] or [n + 1])
    builds = [s["build_seconds"] for s in steps if s["built"] and s["build_seconds"]]
    run_s = lambda hit: [s["seconds"] - (s["build_seconds"] or 0) * s["built"]  # noqa: E731
                         for s in steps if s["booted"] and s["hit"] == hit]
    clean, hit = run_s(False), run_s(True) or run_s(False)
    seconds = (statistics.mean(clean) + n * statistics.mean(builds)
               + (first_bad - 1) * statistics.mean(clean)
               + (n - first_bad + 1) * statistics.mean(hit))
    return n, n + 1, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", action="append", help="series file (repeatable)")
    ap.add_argument("--run", default="examples", help="run of runs.yaml (default: examples)")
    ap.add_argument("--work", type=Path, default=Path("/tmp") / f"kto-bisect-compare-{os.getuid()}",
                    help="work directory (the developer trees, results)")
    args = ap.parse_args()
    from orchestrator import cache, config, source
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    cfg = config.load(REPO / "runs.yaml")[args.run]
    base = source.resolve(cfg.source, lambda m: None).commit
    store = cache.cache_root() / "builds" / "x86_64"
    aside = work / "store-aside"
    sections = []
    try:
        for s in args.series or SERIES:
            series = (REPO / s) if not Path(s).is_absolute() else Path(s)
            tree, commits = developer_tree(work, base, series)
            tree_ids = {git(tree, "rev-parse", f"{c}^{{tree}}") for c in commits}
            move_aside(stored_kernels(store, tree_ids), aside)
            kto = _bisect(str(series), args.run)
            move_aside(stored_kernels(store, tree_ids), aside)
            dev = git_bisect(tree, commits, base, args.run, work)
            n_builds, n_runs, every_s = every_patch(kto)
            first = "/".join(map(str, (kto["verdict"] or {}).get("first_bad") or ["-"]))
            rows = [("kto bisect (measured)", kto["builds"], kto["boots"],
                     f"{kto['seconds'] / 60:.1f} min",
                     (kto["verdict"] or {}).get("summary", "no verdict")),
                    ("`git bisect run` + `kto run --source` (measured)", dev["builds"],
                     dev["runs"], f"{dev['seconds'] / 60:.1f} min",
                     f"first bad {dev['first_bad']}/{len(commits)}; no confidence (one run "
                     "per step, the base assumed good)"),
                    ("every patch in turn (computed from kto's means)", n_builds, n_runs,
                     f"{every_s / 60:.1f} min", "")]
            table = markdown(["", "builds", "boots (test runs)", "wall time", "verdict"], rows)
            sections.append(
                f"### {series.name} ({len(commits)} patches)\n\n" + "\n".join(table) + "\n\n"
                f"`git bisect run` / kto bisect wall time: {dev['seconds'] / kto['seconds']:.2f}x; "
                f"every patch / kto: {every_s / kto['seconds']:.2f}x. kto's first bad "
                f"{first}/{len(commits)}, git bisect's {dev['first_bad']}/{len(commits)}; "
                "the titles the "
                f"developer's script looked for (from the tip's run): "
                f"{'; '.join(dev['titles'])}.\n")
            write("bisect_compare.md", _head(args.run) + "\n".join(sections))
    finally:
        put_back(aside, store)
    return 0


def _head(run: str) -> str:
    return (f"Bisect three ways, {time.strftime('%Y-%m-%d')}, x86_64, run {run}, one run "
            f"each on this machine ({os.cpu_count()} cores), warm ccache, the series' "
            "kernels moved out of the build store before each measured row.\n\n")


if __name__ == "__main__":
    raise SystemExit(main())
