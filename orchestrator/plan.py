"""A run's matrix as a list of jobs, and deterministic shards of it.

A job is one kernel build + one guest session: (arch, kconfig variant, series). The run's
workloads all run in that job's guest, one after the other: splitting them into one job
each would boot (and, on another shard, build) the same kernel once per workload.

Job ids are readable and stable: ``ARCH``, ``ARCH.VARIANT`` (a kconfig variant),
``ARCH+SERIES`` (a series from the run's ``series`` list; the stock kernel is the job
without ``+``). A run with neither variants nor a series list has one job per arch, whose
id is the arch: exactly what ``kto run`` always did, with the same results layout.

Sharding keeps a runner's cache warm: jobs that share a build directory (same arch and
kernel config: the stock kernel and its series are incremental builds of one another)
form a group, and groups, not jobs, are dealt to the N shards in (arch, build dir)
order: to a shard that already holds that arch while it stays within a balanced share,
else to the least-loaded shard (ties: lowest shard number). With fewer groups than shards the largest
groups are split in halves (ids in order) until every shard can get one, so more runners
still mean a shorter night. Deterministic for a given runs.yaml, independent of file order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import RunConfig
from orchestrator.errors import ConfigError


@dataclass(frozen=True)
class Job:
    id: str
    arch: str
    variant: str                   # "" = the run's own kconfig
    series: str                    # "" = stock kernel (or the run's `patches`, if any)
    fragments: tuple[Path, ...]    # shared fragments (the arch fragment is added per arch)
    build_dir: str
    patches: Path | None
    workloads: tuple[str, ...]
    cmdline: tuple[str, ...] = ()  # the run's kernel parameters, then the variant's

    def config(self, cfg: RunConfig) -> RunConfig:
        """The run's config narrowed to this job (what pipeline.run_job takes)."""
        import dataclasses
        return dataclasses.replace(cfg, arches=[self.arch], fragments=list(self.fragments),
                                   build_dir=self.build_dir, patches=self.patches,
                                   workloads=list(self.workloads), variants=[], series=[],
                                   cmdline=list(self.cmdline))


def series_label(cfg: RunConfig, path: Path) -> str:
    """``patches/examples/kasan-vmalloc.mbox`` -> ``examples-kasan-vmalloc``;
    ``patches/selftest/selftest.mbox`` -> ``selftest``."""
    root = cfg.file.resolve().parent / "patches" if cfg.file else path.parent
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path.name)
    parts = list((rel.with_suffix("") if rel.suffix in (".mbox", ".patch") else rel).parts)
    if len(parts) >= 2 and parts[-1] == parts[-2]:
        parts.pop()
    text = "/".join(parts)
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "series"


def expand(cfg: RunConfig, arches: list[str] | None = None) -> list[Job]:
    """Every job of the run (optionally only some arches), sorted by id."""
    for a in arches or []:
        if a not in cfg.arches:
            raise ConfigError(f"run {cfg.name!r} has no arch {a!r} (arches: "
                              f"{', '.join(cfg.arches)})")
    variants = [("", tuple(cfg.fragments), cfg.build_dir, tuple(cfg.cmdline), [])] + [
        (v.name, tuple(cfg.fragments) + tuple(v.fragments), v.build_dir,
         tuple(cfg.cmdline) + tuple(v.cmdline), v.arches)
        for v in cfg.variants]
    serieses = [("", cfg.patches)] + [(series_label(cfg, p), p) for p in cfg.series]
    jobs = []
    for arch in arches or cfg.arches:
        for vname, frags, build_dir, cmdline, only in variants:
            if only and arch not in only:
                continue      # a variant the arch cannot build (e.g. no KCSAN on riscv64)
            for sname, patches in serieses:
                jid = arch + (f".{vname}" if vname else "") + (f"+{sname}" if sname else "")
                jobs.append(Job(jid, arch, vname, sname, frags, build_dir, patches,
                                tuple(cfg.workloads), cmdline))
    ids = [j.id for j in jobs]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ConfigError(f"run {cfg.name!r}: two jobs would have the id {sorted(dup)[0]!r} "
                          "(two series with the same label?)")
    return sorted(jobs, key=lambda j: j.id)


def is_trivial(cfg: RunConfig) -> bool:
    """One job per arch with the arch as its id (the layout kto run always had)."""
    return not cfg.variants and not cfg.series


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4); shards are numbered from 1, like GitLab's CI_NODE_INDEX."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 1/3")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ConfigError(f"--shard {text!r}: I must be between 1 and N (N >= 1)")
    return i, n


def shard_index(jobs: list[Job], n: int) -> dict[str, int]:
    """Job id -> its shard (1..n): groups of jobs sharing (arch, build_dir) dealt whole,
    an arch kept on one shard where balance allows (see the module docstring)."""
    if n < 1:
        raise ConfigError(f"--shards {n}: must be at least 1")
    arch_of = {j.id: j.arch for j in jobs}
    by_dir: dict[tuple[str, str], list[str]] = {}
    for j in sorted(jobs, key=lambda j: j.id):
        by_dir.setdefault((j.arch, j.build_dir), []).append(j.id)
    groups = [ids for _, ids in sorted(by_dir.items())]
    while len(groups) < n and any(len(g) > 1 for g in groups):
        big = max(range(len(groups)), key=lambda k: (len(groups[k]), -k))
        g = groups.pop(big)
        half = (len(g) + 1) // 2
        groups[big:big] = [g[:half], g[half:]]
    target = -(-len(jobs) // n)            # ceil: a balanced shard's size
    load = [0] * n
    held: list[set[str]] = [set() for _ in range(n)]
    where = {}
    for g in groups:                        # in (arch, build_dir) order
        a = arch_of[g[0]]
        same = [k for k in range(n) if a in held[k] and load[k] + len(g) <= target]
        i = same[0] if same else min(range(n), key=lambda k: (load[k], k))
        load[i] += len(g)
        held[i].add(a)
        where.update((jid, i + 1) for jid in g)
    return where


def shard(jobs: list[Job], i: int, n: int) -> list[Job]:
    where = shard_index(jobs, n)
    return [j for j in jobs if where[j.id] == i]


def select(jobs: list[Job], ids: list[str]) -> list[Job]:
    """Only the named jobs (``kto run --job ID``); an unknown id is an error."""
    known = {j.id for j in jobs}
    for i in ids:
        if i not in known:
            raise ConfigError(f"no job {i!r} in this run (jobs: {', '.join(sorted(known))})")
    return [j for j in jobs if j.id in ids]
