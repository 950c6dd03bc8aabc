"""The default run's x86_64 kernel from the build store, for benchmarks that must not build.

A fully cached ``kto run default`` records its store directory in summary.json (relative
to the cache root); the newest such run under ``results/`` whose store entry still exists
is used.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def default_build(results: Path = REPO / "results", arch: str = "x86_64") -> Path:
    from orchestrator.cache import cache_root
    root = cache_root()
    for summary in sorted(results.glob("default-*/summary.json"),
                          key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            jobs = json.loads(summary.read_text()).get("jobs", [])
        except (OSError, ValueError):
            continue
        for job in jobs:
            d = job.get("build", {}).get("dir")
            if job.get("arch") == arch and d and (root / d / "metadata.json").exists():
                return root / d        # (an absolute d, of older summaries, stays)
    raise SystemExit(f"no stored {arch} kernel of the default run found under {results}: "
                     "run `kto run default` (or bench/overhead.py) first")
