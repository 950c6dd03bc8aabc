"""Which patch of a series introduced a report: the decision logic of ``kto bisect``.

Steps are patch counts: step 0 is the base, step k has patches 1..k applied, step N is
the tip. A test run at a step either **hits** (a report whose title matches the
predicate), **misses**, or is **skipped** (the step does not build or boot: like ``git
bisect skip`` it is never called good or bad). Unrelated reports are recorded by the
caller, never counted as hits.

Flaky reports. A hit is conclusive (titles are specific, so a step that printed the
report has the bug). A miss is not: a step is called good only after enough clean runs.
The reproduction rate ``p`` of a bad step is uncertain, so kto keeps its posterior given
every run at the steps known to be bad (``h`` hits, ``m`` misses; uniform prior:
Beta(h+1, m+1), which is valid whatever the stopping rule). A bad step stays clean for
``n`` runs with probability ``E[(1-p)^n] = prod_{j<n} (m+1+j) / (h+m+2+j)``; a step is
called good once that is at most ``1 - confidence``. The number of runs adapts to the
observed rate: 3 runs at 95% after 2/2 hits at the tip, 2 after 6/6, about 8 after 2/6.
The confidence stated with the answer is the probability that none of the good verdicts
it rests on was a bad step that stayed clean: the product of ``1 - E[(1-p)^n_i]`` over
the good steps. A cap on the total number of runs stops the search with the range it
has narrowed to.

The base is run once (to learn the reports it prints already) and then serves as the
lower bound of the search; it gets the repeats of a good verdict only if it is the last
good candidate (the first bad step is 1/N). Once a later step is good, its clean runs
already prove the base good under the monotonic assumption the answer rests on.

This module is pure: it decides what to run next and what the runs mean. The runner
(``orchestrator/seriestest.py``) builds, boots and tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

HIT, MISS, SKIP = "hit", "miss", "skip"


@dataclass
class Run:
    outcome: str                    # HIT | MISS | SKIP
    matched: list[str] = field(default_factory=list)    # titles that satisfied the predicate
    other: list[str] = field(default_factory=list)      # unrelated report titles (recorded)
    detail: str = ""                # why skipped (build failure, boot failure...)
    seconds: float = 0.0
    built: bool = False             # a real build (not a store hit) happened for this run
    booted: bool = False
    permanent: bool = True          # a skip that would repeat (build failure), not a flake


@dataclass
class Step:
    index: int
    runs: list[Run] = field(default_factory=list)

    @property
    def hits(self) -> int:
        return sum(r.outcome == HIT for r in self.runs)

    @property
    def tested(self) -> int:
        return sum(r.outcome != SKIP for r in self.runs)

    @property
    def skipped(self) -> bool:
        """Untestable: a build failure, or a boot failure that happened twice."""
        skips = [r for r in self.runs if r.outcome == SKIP]
        return any(r.permanent for r in skips) or len(skips) >= 2


@dataclass
class Verdict:
    status: str          # found | ambiguous | not-reproduced | present-at-base | inconclusive
    first_bad: list[int]  # candidate steps (one when found)
    good: int | None     # the last good step
    rate: float          # pooled reproduction rate at bad steps
    confidence: float    # in the good verdicts the answer rests on
    summary: str


class Bisection:
    """Decide the next step to test and interpret the runs."""

    def __init__(self, total: int, confidence: float = 0.95, max_runs: int = 40,
                 tip_runs: int = 2, tip_max_runs: int = 8, base_once: bool = True):
        if total < 1:
            raise ValueError("a series has at least one patch")
        if not 0 < confidence < 1:
            raise ValueError("confidence must be in (0, 1)")
        self.total = total
        self.confidence = confidence
        self.max_runs = max_runs
        self.tip_runs = tip_runs            # runs at the tip to measure the rate
        self.tip_max_runs = tip_max_runs    # give up reproducing after this many misses
        # False: the policy before issue 18 (the base first gets the runs of a good
        # verdict); kept for bench/bisect_bench.py's before/after comparison.
        self.base_once = base_once
        self.steps: dict[int, Step] = {}

    # -- recording --

    def record(self, index: int, run: Run) -> None:
        if not 0 <= index <= self.total:
            raise ValueError(f"step {index} is outside 0..{self.total}")
        self.steps.setdefault(index, Step(index)).runs.append(run)

    def runs_used(self) -> int:
        return sum(len(s.runs) for s in self.steps.values())

    # -- interpretation --

    def _bad_counts(self) -> tuple[int, int]:
        bad = [s for s in self.steps.values() if s.hits]
        hits = sum(s.hits for s in bad)
        return hits, sum(s.tested for s in bad) - hits

    def rate(self) -> float:
        """Observed reproduction rate over the steps known to be bad (for display)."""
        h, m = self._bad_counts()
        return h / (h + m) if h + m else 0.0

    def p_clean(self, n: int) -> float:
        """Posterior probability that a bad step shows no hit in n runs."""
        h, m = self._bad_counts()
        prob = 1.0
        for j in range(n):
            prob *= (m + 1 + j) / (h + m + 2 + j)
        return prob

    def runs_for_good(self) -> int:
        """Clean runs needed before a step is called good, given the runs so far."""
        if not self._bad_counts()[0]:
            return self.tip_max_runs
        n = 1
        while self.p_clean(n) > 1 - self.confidence and n < 1000:
            n += 1
        return n

    def verdict_of(self, index: int) -> str:
        """bad | good | skip | pending | untested."""
        s = self.steps.get(index)
        if s is None or not s.runs:
            return "untested"
        if s.hits:
            return "bad"
        if s.skipped:
            return "skip"
        if index == self.total:
            return "pending"        # the tip decides the rate; handled by next_step
        return "good" if s.tested >= self.runs_for_good() else "pending"

    def _bounds(self) -> tuple[int | None, int | None]:
        bad = [i for i in self.steps if self.verdict_of(i) == "bad"]
        hi = min(bad) if bad else None
        good = [i for i in self.steps if self.verdict_of(i) == "good" and (hi is None or i < hi)]
        lo = max(good) if good else None
        return lo, hi

    def _search_bounds(self) -> tuple[int, int | None]:
        """Like _bounds, but a base that was run and stayed clean is a lower bound even
        before it has the runs of a good verdict: it only needs them if it turns out to
        be the last good candidate (under the monotonic assumption the answer rests on,
        a later step proven good proves the base good too)."""
        lo, hi = self._bounds()
        return (0 if lo is None else lo), hi

    # -- what next --

    def next_step(self) -> int | None:
        """The step to run next, or None when the answer (or the cap) is reached."""
        if self.runs_used() >= self.max_runs:
            return None
        tip = self.steps.get(self.total)
        # 1. The tip: reproduce, and measure the rate over a few runs.
        if tip is None or (tip.hits < self.tip_runs and tip.tested < self.tip_max_runs
                           and not tip.skipped):
            if tip is not None and tip.hits == 0 and tip.tested >= self.tip_max_runs:
                return None
            return self.total
        if not tip.hits:
            return None             # not reproduced (or the tip does not build/boot)
        # 2. The base, once: a report it prints is not the series' doing.
        base = self.verdict_of(0)
        if base == "untested" or (base == "pending" and not self.base_once):
            return 0
        if base in ("bad", "skip"):
            return None
        # 3. Binary search between the last good and the first bad step.
        lo, hi = self._search_bounds()
        pending = [i for i in range(lo + 1, hi) if self.verdict_of(i) == "pending"]
        if pending:
            return pending[0]       # finish a step before moving on
        candidates = [i for i in range(lo + 1, hi) if self.verdict_of(i) == "untested"]
        if candidates:
            mid = (lo + hi) / 2
            return min(candidates, key=lambda i: (abs(i - mid), i))
        # 4. The base is the last good candidate: now it needs the runs of a good verdict.
        if lo == 0 and base == "pending":
            return 0
        return None

    def result(self) -> Verdict:
        tip = self.steps.get(self.total)
        p = self.rate()
        if tip is None or not tip.hits:
            why = ("the tip does not build or boot" if tip is not None and tip.skipped else
                   f"not reproduced at the tip in {tip.tested if tip else 0} run(s)")
            return Verdict("not-reproduced", [], None, p, 0.0, why)
        if self.verdict_of(0) == "bad":
            return Verdict("present-at-base", [], None, p, 1.0,
                           f"reproduced {self._rate_text(0)} at the base: the report is not "
                           "introduced by the series")
        if self.verdict_of(0) == "skip":
            return Verdict("inconclusive", [], None, p, 0.0, "the base does not build or boot")
        lo, hi = self._bounds()
        conf = self.answer_confidence()
        if lo is None and self.verdict_of(0) == "untested":
            return Verdict("inconclusive", list(range(1, hi + 1)), None, p, conf,
                           f"run cap of {self.max_runs} reached before the base was "
                           "tested")
        between = list(range((lo or 0) + 1, hi))
        open_steps = [i for i in between if self.verdict_of(i) in ("untested", "pending")]
        if lo is None:
            open_steps.append(0)    # the base ran clean, but not enough to call it good
            lo = 0
        skipped = [i for i in between if self.verdict_of(i) == "skip"]
        if open_steps:
            cands = list(range(lo + 1, hi + 1))
            return Verdict("inconclusive", cands, None if 0 in open_steps else lo, p, conf,
                           f"run cap of {self.max_runs} reached: first bad is one of "
                           + ", ".join(self.label(i) for i in cands))
        cands = [*skipped, hi]
        evidence = self.evidence(lo, hi)
        if len(cands) == 1:
            return Verdict("found", cands, lo, p, conf,
                           f"first bad is {self.label(hi)}; {evidence}: confidence "
                           f"{conf:.0%}")
        return Verdict("ambiguous", cands, lo, p, conf,
                       f"first bad is one of {', '.join(self.label(i) for i in cands)} "
                       f"({', '.join(self.label(i) for i in skipped)} cannot be tested); "
                       f"{evidence}: confidence {conf:.0%}")

    def answer_confidence(self) -> float:
        """P(no good verdict was a bad step that stayed clean), under the posterior."""
        conf = 1.0
        for i, s in self.steps.items():
            if self.verdict_of(i) == "good":
                conf *= 1 - self.p_clean(s.tested)
        return conf

    # -- text --

    def label(self, index: int) -> str:
        return "the base" if index == 0 else f"{index}/{self.total}"

    def _rate_text(self, index: int) -> str:
        s = self.steps[index]
        return f"{s.hits}/{s.tested}"

    def evidence(self, lo: int, hi: int) -> str:
        return (f"reproduced {self._rate_text(hi)} at {self.label(hi)}; "
                f"{self._rate_text(lo)} at {self.label(lo)}")

    def log(self) -> list[str]:
        out = []
        for i in sorted(self.steps):
            s = self.steps[i]
            skips = [r.detail for r in s.runs if r.outcome == SKIP]
            verdict = self.verdict_of(i)
            if i == 0 and verdict == "pending":
                verdict = "clean (run once for its titles; a later good step proves it good)"
            what = (f"skip ({skips[0]})" if skips else
                    f"{verdict}: reproduced {s.hits}/{s.tested}")
            out.append(f"step {self.label(i)}: {what}")
        return out
