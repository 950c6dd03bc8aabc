"""check-series' noise policy: a tip-only title known-issues.yaml lists is "known", not
new (a flaky stock-kernel race the base run happened to miss)."""
from orchestrator.commands.check_series import compare
from orchestrator.known_issues import KnownIssue

RACE = "KCSAN: data-race in filemap_fault / filemap_map_pages"
KNOWN = [KnownIssue(r"^KCSAN: data-race in filemap_fault / filemap_map_pages$",
                    "stock 6.12 race", ["x86_64"], [], "known-issues.yaml:1")]


def test_known_tip_only_title_is_not_new():
    d = compare([], [RACE, "BUG: KASAN: use-after-free in vma_start_read"], KNOWN, "x86_64",
                "race")
    assert d["new"] == ["BUG: KASAN: use-after-free in vma_start_read"]
    assert d["known"] == [RACE]


def test_known_issue_of_another_arch_still_counts_as_new():
    d = compare([], [RACE], KNOWN, "arm64", "race")
    assert d["new"] == [RACE] and d["known"] == []


def test_without_known_issues_every_tip_only_title_is_new():
    d = compare(["A"], ["A", "B"])
    assert d == {"new": ["B"], "known": [], "pre-existing": ["A"], "fixed": []}
