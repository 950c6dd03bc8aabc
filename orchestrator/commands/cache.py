"""kto cache prune --max-size SIZE: least recently used builds, images, selftests and
build directories (and old results with --results DIR) deleted down to SIZE."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from orchestrator import retention
from orchestrator.cache import cache_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="cache maintenance (prune to a size)")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    q = csub.add_parser("prune", help="delete least recently used entries down to a size "
                        "(and what killed source imports left)",
                        description=retention.__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--max-size", required=True, metavar="SIZE",
                   help="target total, e.g. 40G (binary units)")
    q.add_argument("--results", type=Path, metavar="DIR",
                   help="also prune results directories under DIR (counted in the total)")
    q.add_argument("--min-age", type=float, default=1.0, metavar="HOURS",
                   help="keep entries used within this many hours (default 1)")
    q.add_argument("--dry-run", action="store_true", help="only say what would go")
    q.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    limit = retention.parse_size(args.max_size)
    root = cache_root()
    res = retention.prune(root, limit, args.results, args.min_age * 3600, args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for p in res.leftovers:
        what = "source import" if p.name.startswith(".import-") else "kto"
        print(f"removed leftover of a killed {what}  {p}")
    for e in res.removed:
        age = (time.time() - e.last_use) / 86400
        print(f"{verb} {e.kind:<9} {retention.fmt_size(e.size):>10}  last used "
              f"{age:.1f} days ago  {e.path}")
    for e in res.kept_recent:
        print(f"kept    {e.kind:<9} {retention.fmt_size(e.size):>10}  used within "
              f"{args.min_age:g}h  {e.path}")
    for s in res.skipped:
        print(f"note: {s}")
    print(f"{root}: {retention.fmt_size(res.total_before)} -> "
          f"{retention.fmt_size(res.total_after)} (limit {retention.fmt_size(limit)})")
    return 0
