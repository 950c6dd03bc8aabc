"""Conformance against syzkaller's pkg/report expectations (first report of each log)."""
from __future__ import annotations

import pytest

from pathlib import Path

from orchestrator.report import conformance as C

pytestmark = pytest.mark.skipif(not C.DEFAULT_CORPUS.is_dir(), reason="corpus not available")


@pytest.fixture(scope="module")
def results():
    return C.run(C.load_corpus(C.DEFAULT_CORPUS))


def test_corpus_size(results):
    assert len(results) == 354


def test_crash_agreement_is_total(results):
    bad = [r.case.name for r in results if not r.crash_ok]
    assert not bad, f"crash/no-crash disagreement: {bad}"


@pytest.mark.parametrize("family", sorted(C.GATED))
def test_family_exact_titles(results, family):
    rate = C.family_title_rate(results, family)
    assert rate >= 0.95, f"{family}: {rate:.1%} exact titles"


def test_only_documented_mismatches(results, capsys):
    with capsys.disabled():
        print("\n" + C.table(results))
    unexpected = [ln for ln in C.mismatch_lines(results) if ln.startswith("[UNEXPECTED]")]
    assert not unexpected, "\n".join(unexpected)


def test_known_mismatch_list_is_current(results):
    # A documented mismatch that now passes should be removed from the list.
    by_name = {r.case.name: r for r in results}
    stale = [n for _, (_, ids) in C.KNOWN_MISMATCHES.items() for n in ids if by_name[n].ok]
    assert not stale, f"now matching, drop from KNOWN_MISMATCHES: {stale}"


def test_cross_validated_held_out_titles(results):
    """The gate of issue 12: exact titles on each held-out fold, summed over the 5 folds,
    >= 97% for the gated families together (ALT titles do not count)."""
    per = C.cv_folds(results)
    ok, n = (sum(f["held"][i] for f in per) for i in (0, 1))
    assert n == sum(1 for r in results if r.case.titles and C.family(r.case.titles[0]) in C.GATED)
    assert ok / n >= 0.97, "\n" + C.cv_table(results)
    assert all(f["crash"] == f["files"] for f in per), C.cv_table(results)


def test_folds_are_a_stable_partition(results):
    names = [r.case.name for r in results]
    folds = [C.fold(n) for n in names]
    assert set(folds) == set(range(C.FOLDS))
    assert min(folds.count(k) for k in range(C.FOLDS)) >= len(names) // (2 * C.FOLDS)
    # crc32, not Python's per-process salted hash(): the same split on every machine.
    assert [C.fold(n) for n in ("1", "100", "755")] == [C.fold(n) for n in ("1", "100", "755")]
    assert C.fold("1") == __import__("zlib").crc32(b"1") % 5


def test_cv_cli_prints_each_fold(capsys):
    assert C.main(["--cv", str(C.DEFAULT_CORPUS)]) == 0
    out = capsys.readouterr().out
    assert all(f"\n| {k} | " in out for k in range(C.FOLDS)) and "| total |" in out


def test_train_cli_lists_only_training_folds(capsys):
    C.main(["--train", "0", str(C.DEFAULT_CORPUS)])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  [")]
    assert lines and all(C.fold(ln.split("] ")[1].split(":")[0]) != 0 for ln in lines)


def test_default_corpus_is_next_to_the_repository(monkeypatch):
    import importlib
    monkeypatch.delenv("KTO_REPORT_CORPUS", raising=False)
    mod = importlib.reload(C)
    repo = Path(mod.__file__).resolve().parents[2]
    assert mod.DEFAULT_CORPUS == repo.parent / "shared" / "corpus" / "syzkaller-linux-reports"
    monkeypatch.setenv("KTO_REPORT_CORPUS", "/elsewhere")
    assert importlib.reload(C).DEFAULT_CORPUS == Path("/elsewhere")
    monkeypatch.delenv("KTO_REPORT_CORPUS")
    importlib.reload(C)


def test_skip_usage_names_the_files_a_pattern_keeps_right(results):
    from orchestrator.report import formats as F
    before = F.SKIP_RE.pattern
    usage = dict(C.skip_usage([C.load_case(C.DEFAULT_CORPUS / "75")]))
    assert usage["dump_stack"] == ["75"]
    assert sum(1 for files in usage.values() if files) >= 1
    assert F.SKIP_RE.pattern == before  # restored
    assert [r.title for r in C.run([r.case for r in results[:40]])] == [r.title for r in results[:40]]


def test_strict_cv_drops_patterns_only_the_held_out_fold_needs(results):
    # 75 needs "dump_stack" (see above) and is the only file given: leaving out the patterns
    # only its fold needs must cost it its exact title.
    case = C.load_case(C.DEFAULT_CORPUS / "75")
    table = C.strict_cv_table([case])
    k = C.fold("75")
    row = next(ln for ln in table.splitlines() if ln.startswith(f"| {k} |"))
    assert row.endswith("| 0.0 |") and int(row.split("|")[3]) >= 1
    assert C.run([case])[0].title_ok  # patterns restored afterwards
