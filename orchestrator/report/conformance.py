"""Conformance of the parser against syzkaller's expected titles.

    python -m orchestrator.report.conformance [CORPUS_DIR]
    python -m orchestrator.report.conformance --cv [CORPUS_DIR]
    python -m orchestrator.report.conformance --train K [CORPUS_DIR]
    python -m orchestrator.report.conformance --skip-usage [CORPUS_DIR]
    python -m orchestrator.report.conformance --cv-strict [CORPUS_DIR]

Prints a per-family table (files, exact title %, type %, corrupted %) and the mismatches.
Mismatches we chose not to match are listed in KNOWN_MISMATCHES with the reason.

``--cv`` splits the corpus into FOLDS folds by a stable hash of the file name and prints the
exact-title agreement of each fold and of all of them.  The parser is hand-written rules, so
"training" is a discipline: while changing rules for held-out fold K, look only at the logs
and mismatches that ``--train K`` prints (the other folds), then measure fold K with ``--cv``.
The corpus defaults to ``../shared/corpus/syzkaller-linux-reports`` next to the repository;
``KTO_REPORT_CORPUS`` overrides it.

``--cv-strict`` makes the held-out figure honest for the global skip list: for fold K it
leaves out every skip pattern that only files of fold K need.
``--skip-usage`` removes each global skip pattern in turn and lists the files whose exact
title it keeps right (and their folds): an entry only one file needs is a smell unless it
names a kernel family.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.report.parser import parse

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = Path(os.environ.get("KTO_REPORT_CORPUS")
                      or _REPO.parent / "shared" / "corpus" / "syzkaller-linux-reports")
FOLDS = 5

# category -> (reason, file ids).  Each listed file may mismatch in title/type/corrupted, but
# must still agree on crash/no-crash.
KNOWN_MISMATCHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rust-panic": (
        "Rust 'attempt to ... with overflow' panics need Rust symbol demangling; we report the "
        "BUG that follows (kernel BUG in rust_helper_BUG) instead",
        ("748", "749"),
    ),
    "go-runtime": (
        "syz-executor Go runtime crash variant ('fatal error: runtimer: bad p') outside kernel scope",
        ("707",),
    ),
    "corrupted-heuristics": (
        "syzkaller's corrupted verdict depends on its console/'questionable line' heuristics and "
        "on interleaved fault-injection stacks it drops; title prefix matches, only the frame "
        "('corrupted' vs a frame) or the C flag differs",
        ("17", "82", "90", "111", "197", "206", "218", "230", "343", "633"),
    ),
    "frame-choice": (
        "guilty frame differs: a compat ioctl wrapper (lo_compat_ioctl for lo_ioctl: syzkaller's "
        "stall anchors pass it while kvm_vm_compat_ioctl in 318 is kept), a crypto library frame "
        "(aes_encrypt for alg_setkey)",
        ("294", "751"),
    ),
}


@dataclass
class Case:
    name: str
    log: str
    titles: list[str] = field(default_factory=list)  # TITLE first, then ALTs
    type: str = ""
    corrupted: bool = False


def load_case(path: Path) -> Case:
    data = path.read_text(encoding="utf-8", errors="replace")
    head, sep, log = data.partition("\n\n")
    if data.startswith("\n"):
        head, log = "", data[1:]
    case = Case(path.name, log)
    alts = []
    for ln in head.split("\n"):
        key, _, val = ln.partition(": ")
        if key == "TITLE":
            case.titles.insert(0, val.strip())
        elif key == "ALT":
            alts.append(val.strip())
        elif key == "TYPE":
            case.type = val.strip()
        elif key == "CORRUPTED":
            case.corrupted = val.strip() == "Y"
    case.titles += alts
    # An expected-report section after the log is not part of the log.
    idx = log.find("\nREPORT:\n")
    if idx >= 0:
        case.log = log[:idx]
    elif log.startswith("REPORT:\n"):
        case.log = ""
    return case


def load_corpus(root: Path = DEFAULT_CORPUS) -> list[Case]:
    files = [p for p in root.iterdir() if p.name.isdigit()]
    return [load_case(p) for p in sorted(files, key=lambda p: int(p.name))]


FAMILIES = (
    ("KASAN", re.compile(r"^(KASAN|KFENCE):")),
    ("lockdep/atomic-sleep/RCU", re.compile(
        r"^(possible deadlock|inconsistent lock state|BUG: (sleeping function|scheduling while atomic|held lock freed|bad unlock|spinlock|rwlock|using |workqueue leaked)"
        r"|WARNING: (suspicious RCU|locking bug|bad unlock|held lock freed|nested lock|still has locks|possible circular)|INFO: (suspicious RCU|trying to register non-static))")),
    ("WARNING", re.compile(r"^WARNING")),
    ("BUG/GPF/page-fault", re.compile(
        r"^(kernel BUG|BUG: |general protection fault|stack segment|divide error|Internal error|PANIC: double fault|Oops)")),
    ("hang", re.compile(r"^(INFO: task |INFO: rcu detected stall|BUG: soft lockup|BUG: workqueue lockup)")),
)
GATED = {name for name, _ in FAMILIES}


def family(title: str) -> str:
    if not title:
        return "no crash"
    for name, rx in FAMILIES:
        if rx.search(title):
            return name
    return "other"


@dataclass
class Result:
    case: Case
    title: str | None
    type: str | None
    corrupted: bool | None

    @property
    def crash_ok(self) -> bool:
        return bool(self.case.titles) == (self.title is not None)

    @property
    def title_ok(self) -> bool:
        if not self.case.titles:
            return self.title is None
        return self.title in self.case.titles

    @property
    def type_ok(self) -> bool:
        return not self.case.titles or (self.type == (self.case.type or "UNKNOWN"))

    @property
    def corrupted_ok(self) -> bool:
        return not self.case.titles or self.corrupted == self.case.corrupted

    @property
    def ok(self) -> bool:
        return self.crash_ok and self.title_ok and self.type_ok and self.corrupted_ok


def run(cases: list[Case]) -> list[Result]:
    out = []
    for case in cases:
        reps = parse(case.log)
        r = reps[0] if reps else None
        out.append(Result(case, r.title if r else None, r.type if r else None, r.corrupted if r else None))
    return out


def known(name: str) -> str | None:
    for cat, (_, ids) in KNOWN_MISMATCHES.items():
        if name in ids:
            return cat
    return None


def table(results: list[Result]) -> str:
    fams: dict[str, list[Result]] = {}
    for r in results:
        fams.setdefault(family(r.case.titles[0] if r.case.titles else ""), []).append(r)
    order = [n for n, _ in FAMILIES] + ["other", "no crash"]
    rows = ["| family | files | crash agree % | exact title % | type % | corrupted % |",
            "|---|---:|---:|---:|---:|---:|"]

    def pct(n, d):
        return f"{100.0 * n / d:.1f}" if d else "-"

    for name in order + ["ALL"]:
        rs = results if name == "ALL" else fams.get(name, [])
        if not rs:
            continue
        rows.append(
            f"| {name} | {len(rs)} | {pct(sum(r.crash_ok for r in rs), len(rs))} | "
            f"{pct(sum(r.title_ok for r in rs), len(rs))} | {pct(sum(r.type_ok for r in rs), len(rs))} | "
            f"{pct(sum(r.corrupted_ok for r in rs), len(rs))} |"
        )
    return "\n".join(rows)


def family_title_rate(results: list[Result], name: str) -> float:
    rs = [r for r in results if r.case.titles and family(r.case.titles[0]) == name]
    return sum(r.title_ok for r in rs) / len(rs) if rs else 1.0


def mismatch_lines(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        if r.ok:
            continue
        exp = r.case.titles[0] if r.case.titles else "<no crash>"
        cat = known(r.case.name)
        tag = f"[{cat}]" if cat else "[UNEXPECTED]"
        out.append(
            f"{tag} {r.case.name}: expected {exp!r} {r.case.type or '-'} C={r.case.corrupted:d}; "
            f"got {r.title!r} {r.type or '-'} C={int(bool(r.corrupted))}"
        )
    return out


def fold(name: str, folds: int = FOLDS) -> int:
    """Stable fold of a corpus file: crc32 of its name (not Python's salted hash())."""
    return zlib.crc32(name.encode()) % folds


def gated_title_rate(results: list[Result]) -> tuple[int, int]:
    """(exact titles, files) over the gated families together."""
    rs = [r for r in results if r.case.titles and family(r.case.titles[0]) in GATED]
    return sum(r.title_ok for r in rs), len(rs)


def cv_folds(results: list[Result], folds: int = FOLDS) -> list[dict]:
    """Per fold: its held-out gated exact titles and those of its training folds (the rest)."""
    out = []
    for k in range(folds):
        held = [r for r in results if fold(r.case.name, folds) == k]
        train = [r for r in results if fold(r.case.name, folds) != k]
        out.append({"fold": k, "files": len(held), "held": gated_title_rate(held),
                    "train": gated_title_rate(train), "crash": sum(r.crash_ok for r in held)})
    return out


def cv_table(results: list[Result], folds: int = FOLDS) -> str:
    """Per held-out fold: gated exact titles held out and on its training folds, crash agreement."""
    rows = ["| held-out fold | files | gated files | held-out gated exact title % "
            "| training folds gated exact title % | crash agree % |",
            "|---|---:|---:|---:|---:|---:|"]

    def pct(a, b):
        return f"{100.0 * a / b:.1f}" if b else "-"

    per = cv_folds(results, folds)
    for f in per:
        (ho, hn), (to, tn) = f["held"], f["train"]
        rows.append(f"| {f['fold']} | {f['files']} | {hn} | {pct(ho, hn)} | {pct(to, tn)} | {pct(f['crash'], f['files'])} |")
    ho, hn = (sum(f["held"][i] for f in per) for i in (0, 1))
    to, tn = (sum(f["train"][i] for f in per) for i in (0, 1))
    rows.append(f"| total | {len(results)} | {hn} | {pct(ho, hn)} | {pct(to, tn)} | "
                f"{pct(sum(r.crash_ok for r in results), len(results))} |")
    return "\n".join(rows)


def _run_without(cases: list[Case], drop: set[str]) -> list[Result]:
    """Results with the global skip patterns in ``drop`` left out (caches reset around it)."""
    from orchestrator.report import formats as F, frames, parser

    def reset(patterns) -> None:
        F.SKIP_RE = re.compile("|".join(f"(?:{p})" for p in patterns))
        frames._skip_re.cache_clear()
        frames._SKIP_MEMO.clear()
        parser._describe_cached.cache_clear()

    try:
        reset([p for p in F.SKIP_FRAMES if p not in drop])
        return run(cases)
    finally:
        reset(F.SKIP_FRAMES)


def skip_usage(cases: list[Case]) -> list[tuple[str, list[str]]]:
    """(pattern, files that lose their exact title without it) per global skip pattern."""
    from orchestrator.report import formats as F

    base = {r.case.name: r.title_ok for r in run(cases)}
    out = []
    for pat in F.SKIP_FRAMES:
        now = _run_without(cases, {pat})
        out.append((pat, [r.case.name for r in now if base[r.case.name] and not r.title_ok]))
    return out


def strict_cv_table(cases: list[Case], folds: int = FOLDS) -> str:
    """Held-out gated exact titles per fold when every global skip pattern that only files of
    that fold need is left out: the skip list as if it had been built without the fold."""
    usage = skip_usage(cases)
    rows = ["| held-out fold | gated files | skip patterns only this fold needs | held-out gated exact title % |",
            "|---|---:|---:|---:|"]
    tot_ok = tot_n = 0
    for k in range(folds):
        drop = {p for p, files in usage if files and all(fold(n, folds) == k for n in files)}
        held = [c for c in cases if fold(c.name, folds) == k]
        ok, n = gated_title_rate(_run_without(held, drop))
        tot_ok, tot_n = tot_ok + ok, tot_n + n
        rows.append(f"| {k} | {n} | {len(drop)} | {f'{100.0 * ok / n:.1f}' if n else '-'} |")
    rows.append(f"| total | {tot_n} | | {f'{100.0 * tot_ok / tot_n:.1f}' if tot_n else '-'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestrator.report.conformance",
                                 description="Compare kto's report titles with syzkaller's on a corpus.")
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS,
                    help="directory of syzkaller report test files (default: %(default)s)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--cv", action="store_true",
                      help=f"print the held-out exact-title agreement of each of {FOLDS} folds")
    mode.add_argument("--train", type=int, metavar="K",
                      help="print only the mismatches of the training folds for held-out fold K")
    mode.add_argument("--cv-strict", action="store_true",
                      help="held-out figures with the skip patterns only the held-out fold needs "
                      "left out (slow)")
    mode.add_argument("--skip-usage", action="store_true",
                      help="per global skip pattern, the files whose title needs it (slow)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    root = args.corpus
    if not root.is_dir():
        print(f"conformance: no corpus directory {root}", file=sys.stderr)
        return 2
    if args.train is not None and not 0 <= args.train < FOLDS:
        print(f"conformance: --train {args.train}: fold must be 0..{FOLDS - 1}", file=sys.stderr)
        return 2
    if args.cv_strict:
        print(strict_cv_table(load_corpus(root)))
        return 0
    if args.skip_usage:
        for pat, files in sorted(skip_usage(load_corpus(root)), key=lambda pf: len(pf[1])):
            folds = sorted({fold(n) for n in files})
            print(f"{len(files):3d} files, folds {folds}: {pat}  {' '.join(files[:8])}")
        return 0
    results = run(load_corpus(root))
    if args.cv:
        print(cv_table(results))
        return 0
    if args.train is not None:
        results = [r for r in results if fold(r.case.name) != args.train]
        print(f"training folds for held-out fold {args.train}: {len(results)} files")
    print(table(results))
    print()
    for cat, (reason, ids) in KNOWN_MISMATCHES.items():
        print(f"known mismatch '{cat}' ({len(ids)} files): {reason}")
    print()
    lines = mismatch_lines(results)
    print(f"{len(lines)} mismatching files:")
    for ln in lines:
        print("  " + ln)
    unexpected = [ln for ln in lines if ln.startswith("[UNEXPECTED]")]
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
