"""Conformance against syzkaller's pkg/report expectations (first report of each log)."""
from __future__ import annotations

import pytest

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
