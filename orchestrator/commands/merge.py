"""kto merge DIR... --out DIR: the results of a run's shards (kto run RUN --shard I/N, one
per CI job) as one results directory: summary.json with every job, each job's directory
(console log, build log, workloads, reports) copied, and junit.xml, kcidb.json and
index.html written anew from the merged summary."""
from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path

from orchestrator import results
from orchestrator.errors import KtoError
from orchestrator.results import RunResult, summary_lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge shard results into one results directory",
                       description="Merge results directories of one run's shards into one "
                       "(summary.json, job directories, junit.xml, kcidb.json, index.html). "
                       "Each DIR is a results directory (with summary.json) or a directory "
                       "holding them (e.g. a shard's --results root). Exit 0/1/2 as the "
                       "merged run's kto run would; 2 also when a shard is missing or two "
                       "shards ran the same job.")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                   help="a shard's results directory (with summary.json), or a directory "
                   "holding several (e.g. a shard's --results root)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="the merged results directory (must not exist, or be empty)")
    p.add_argument("--log-base-url", metavar="URL",
                   help="the URL the merged directory will be published at (e.g. the CI "
                   "job's artifacts): kcidb.json links logs below it (default: "
                   "$KTO_LOG_BASE_URL, or no links)")
    p.add_argument("--kcidb-origin", metavar="NAME",
                   help="KCIDB origin of the objects in kcidb.json (default: "
                   "$KTO_KCIDB_ORIGIN or kto)")
    p.set_defaults(func=main)


def find_results(paths: list[Path]) -> list[Path]:
    """Results directories: each path itself if it has a summary.json, else the
    directories below it that have one (not looking inside those)."""
    found = []
    for p in paths:
        if not p.is_dir():
            raise KtoError(f"{p}: no such results directory")
        below = []
        for root, dirs, files in os.walk(p):
            if "summary.json" in files:
                below.append(Path(root))
                dirs[:] = []
            dirs.sort()
        if not below:
            raise KtoError(f"{p}: no summary.json in it or below it")
        found += below
    return found


def _outside_or_initramfs(top: Path):
    """copytree ignore: the guest initramfs (big, rebuilt from the cache) and symlinks
    that lead out of the shard's directory (results are untrusted CI artifacts)."""
    def ignore(d, names):
        return {n for n in names if n == "initramfs.cpio" or (
            os.path.islink(os.path.join(d, n))
            and results.inside(top, os.path.relpath(os.path.join(d, n), top)) is None)}
    return ignore


def merge(dirs: list[Path], out: Path) -> tuple[RunResult, list[str]]:
    """Merge; returns the merged result and problems that make the merge incomplete
    (missing shards). Inconsistent inputs raise KtoError."""
    shards = [results.load(d) for d in find_results(dirs)]
    names = sorted({s.run for s in shards})
    if len(names) != 1:
        raise KtoError(f"cannot merge results of different runs: {', '.join(names)}")
    sources = sorted({s.source for s in shards if s.source})
    if len(sources) > 1:
        raise KtoError(f"shards tested different sources: {' / '.join(sources)}")
    owner: dict[str, Path] = {}
    for s in shards:
        for j in s.jobs:
            if j.id in owner:
                raise KtoError(f"job {j.id!r} is in two shards: {owner[j.id]} and "
                               f"{s.directory}")
            owner[j.id] = s.directory
    problems = []
    totals = {int(m.group(2)) for s in shards if (m := re.fullmatch(r"(\d+)/(\d+)", s.shard))}
    if len(totals) > 1:
        raise KtoError(f"shards of different partitions: 1/{' and 1/'.join(map(str, totals))}")
    if totals:
        n = totals.pop()
        have = [s.shard for s in shards]
        problems += [f"shard {i}/{n} is missing" for i in range(1, n + 1)
                     if f"{i}/{n}" not in have]
        problems += [f"{s.directory} is not a shard (it ran every job)"
                     for s in shards if not s.shard]
        dup = sorted({h for h in have if h and have.count(h) > 1})
        if dup:
            raise KtoError(f"shard {dup[0]} given twice")

    if out.exists() and any(out.iterdir()):
        raise KtoError(f"{out}: exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    merged = RunResult(run=names[0], directory=out,
                       started=min(s.started for s in shards),
                       finished=max((s.finished for s in shards), default=""),
                       source=sources[0] if sources else "",
                       merged_from=[os.path.relpath(s.directory.resolve(), out.resolve())
                                    for s in shards])
    for s in sorted(shards, key=lambda s: s.shard or ""):
        for j in s.jobs:
            # j.id is a plain name (results.load checks the schema): out / j.id is in out
            sub = s.directory / j.id
            if sub.is_dir() and not sub.is_symlink():
                shutil.copytree(sub, out / j.id, symlinks=True,
                                ignore=_outside_or_initramfs(s.directory))
    merged.jobs = sorted((j for s in shards for j in s.jobs), key=lambda j: j.id)
    merged.write()
    return merged, problems


def main(args: argparse.Namespace) -> int:
    if args.log_base_url:
        os.environ["KTO_LOG_BASE_URL"] = args.log_base_url
    if args.kcidb_origin:
        os.environ["KTO_KCIDB_ORIGIN"] = args.kcidb_origin
        from orchestrator.formats import kcidb
        kcidb.origin()              # a bad name fails before anything is written
    merged, problems = merge(args.dirs, args.out)
    print(f"kto merge {merged.run}: {len(merged.merged_from)} shard result(s), "
          f"{len(merged.jobs)} job(s) -> {merged.directory}")
    for line in summary_lines(merged):
        print(line)
    for p in problems:
        print(f"kto merge: incomplete: {p}")
    return 2 if problems else merged.exit_code()
