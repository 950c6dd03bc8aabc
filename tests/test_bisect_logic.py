"""Bisect decisions over recorded outcomes: deterministic and flaky reports, skipped
steps, the run cap, and the confidence stated with the answer."""
import random
from pathlib import Path

import pytest

from orchestrator.bisect import HIT, MISS, SKIP, Bisection, Run


def drive(b: Bisection, outcome_at) -> list[int]:
    """Run the bisection to the end; outcome_at(step, run_no) -> HIT/MISS/SKIP."""
    order = []
    while (k := b.next_step()) is not None:
        order.append(k)
        b.record(k, Run(outcome_at(k, len(b.steps.get(k).runs) if k in b.steps else 0)))
        assert len(order) < 500
    return order


def deterministic(first_bad):
    return lambda k, _: HIT if k >= first_bad else MISS


@pytest.mark.parametrize("total, first_bad", [(1, 1), (2, 1), (2, 2), (8, 4), (8, 1), (8, 8),
                                               (13, 7)])
def test_deterministic_finds_the_first_bad_patch(total, first_bad):
    b = Bisection(total)
    order = drive(b, deterministic(first_bad))
    v = b.result()
    assert v.status == "found" and v.first_bad == [first_bad], (order, v)
    assert v.good == first_bad - 1
    # A report that always reproduces: few runs per good step (2/2 at the tip leaves
    # some doubt about the rate; every further hit lowers it).
    assert b.rate() == 1.0 and b.runs_for_good() <= 3
    assert len(order) <= 2 + 3 * ((total - 1).bit_length() + 1) + 1
    # Each good verdict is at 95%; the answer rests on all of them.
    goods = [i for i in b.steps if b.verdict_of(i) == "good"]
    assert 0.95 ** len(goods) - 1e-9 <= v.confidence < 1


def test_answer_text_states_rates_and_confidence():
    b = Bisection(5)
    drive(b, deterministic(3))
    v = b.result()
    assert v.summary.startswith("first bad is 3/5; reproduced 1/1 at 3/5; 0/3 at 2/5"), v.summary
    assert v.summary.endswith(f"confidence {v.confidence:.0%}") and v.confidence > 0.9


def test_skipped_step_is_neither_good_nor_bad():
    # 3/6 does not build: the first bad is 3 or 4, and kto says so.
    b = Bisection(6)
    drive(b, lambda k, _: SKIP if k == 3 else (HIT if k >= 4 else MISS))
    v = b.result()
    assert v.status == "ambiguous" and v.first_bad == [3, 4]
    assert "first bad is one of 3/6, 4/6" in v.summary
    assert b.verdict_of(3) == "skip"


def test_skip_that_does_not_matter_is_bypassed():
    b = Bisection(8)
    drive(b, lambda k, _: SKIP if k == 4 else (HIT if k >= 6 else MISS))
    v = b.result()
    assert v.status == "found" and v.first_bad == [6]


def test_one_boot_failure_is_retried_two_make_a_skip():
    b = Bisection(4)
    b.record(4, Run(HIT))
    b.record(4, Run(HIT))
    b.record(2, Run(SKIP, detail="boot-failed: no SSH", permanent=False))
    assert b.verdict_of(2) != "skip"
    b.record(2, Run(MISS))
    assert b.verdict_of(2) == "pending"
    b.record(3, Run(SKIP, permanent=False))
    b.record(3, Run(SKIP, permanent=False))
    assert b.verdict_of(3) == "skip"
    b.record(1, Run(SKIP, detail="build-failed: error"))
    assert b.verdict_of(1) == "skip"


def test_not_reproduced_at_tip():
    b = Bisection(4, tip_max_runs=5)
    order = drive(b, lambda k, _: MISS)
    assert order == [4] * 5
    assert b.result().status == "not-reproduced"


def test_tip_that_does_not_build():
    b = Bisection(4)
    assert drive(b, lambda k, _: SKIP) == [4]
    assert "does not build or boot" in b.result().summary


def test_present_at_base():
    b = Bisection(4)
    drive(b, lambda k, _: HIT)
    v = b.result()
    assert v.status == "present-at-base" and "not introduced by the series" in v.summary


def test_flaky_report_repeats_good_steps_by_the_measured_rate():
    # Reproduces on every third run at bad steps (rate 1/3 at the tip: 2 hits in 6 runs).
    b = Bisection(5, confidence=0.95)
    drive(b, lambda k, n: HIT if k >= 3 and n % 3 == 2 else MISS)
    v = b.result()
    assert v.status == "found" and v.first_bad == [3], (b.log(), v)
    p = b.rate()
    assert 0.2 < p < 0.5
    # Good steps were run until a bad one would have shown a hit with 95% probability.
    n = b.runs_for_good()
    assert b.p_clean(n) <= 0.05 < b.p_clean(n - 1)
    assert n >= 6
    assert v.confidence >= 0.95 ** 2 - 1e-9
    assert "reproduced" in v.summary and "confidence" in v.summary


def test_more_confidence_costs_more_runs():
    def cost(conf):
        b = Bisection(5, confidence=conf)
        drive(b, lambda k, n: HIT if k >= 3 and n % 2 == 1 else MISS)
        return b.runs_used()
    assert cost(0.99) > cost(0.9)


def test_run_cap_gives_the_narrowed_range():
    b = Bisection(16, max_runs=6)
    drive(b, lambda k, n: HIT if k >= 11 and n % 4 == 3 else MISS)
    v = b.result()
    assert b.runs_used() == 6
    assert v.status in ("inconclusive", "not-reproduced")


def test_cap_mid_search_lists_the_candidates():
    b = Bisection(8, max_runs=5)
    drive(b, deterministic(6))
    v = b.result()
    assert v.status == "inconclusive"
    assert 6 in v.first_bad and "first bad is one of" in v.summary


def test_simulated_flaky_bisect_is_right_at_the_stated_confidence():
    """Over many simulated bisects of a p=0.4 report, the culprit is right at least as
    often as the confidence kto states."""
    rng = random.Random(7)
    right, confs = 0, []
    for _ in range(300):
        b = Bisection(8, confidence=0.95, max_runs=200)
        drive(b, lambda k, _: HIT if k >= 5 and rng.random() < 0.4 else MISS)
        v = b.result()
        if v.status == "found":
            confs.append(v.confidence)
            right += v.first_bad == [5]
    assert len(confs) > 250
    assert right / len(confs) >= min(confs) - 0.05


def test_record_rejects_out_of_range_steps():
    b = Bisection(3)
    with pytest.raises(ValueError):
        b.record(4, Run(HIT))


def test_bisect_commit_range_of_a_local_tree_is_one_line_errors(tmp_path):
    """--good/--bad --tree goes through the same checks: a tree that is not a kernel is
    refused with one line and exit 2 (no traceback), with a throwaway cache."""
    import os
    import subprocess
    import sys
    tree = tmp_path / "tree"
    tree.mkdir()
    env = {**os.environ, "KTO_CACHE": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    for i in range(3):
        (tree / "f.c").write_text(f"int x = {i};\n")
        subprocess.run(["git", "init", "-q"] if i == 0 else ["true"], cwd=tree, check=True)
        subprocess.run(["git", "add", "."], cwd=tree, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", f"c{i}"], cwd=tree, check=True, env=env)
    repo = Path(__file__).resolve().parent.parent
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "bisect", "--good", "HEAD~2",
                         "--bad", "HEAD", "--tree", str(tree), "--run", "default",
                         "--results", str(tmp_path / "r")], cwd=repo, env=env,
                        capture_output=True, text=True)
    assert cp.returncode == 2, cp.stdout + cp.stderr
    [line] = cp.stderr.strip().splitlines()
    assert line.startswith("kto: error: ") and "not a Linux source tree" in line, line
    cp = subprocess.run([sys.executable, "-m", "orchestrator", "bisect", "--good", "HEAD~2",
                         "--run", "default"], cwd=repo, env=env, capture_output=True, text=True)
    assert cp.returncode == 2 and "--good REV --bad REV --tree PATH" in cp.stderr


@pytest.mark.parametrize("total, first_bad", [(8, 4), (8, 8), (16, 11), (3, 3)])
def test_base_runs_once_unless_it_is_the_last_good_candidate(total, first_bad):
    # A later good step proves the base good (monotonic assumption): one run suffices
    # to learn the titles it prints already.
    b = Bisection(total)
    order = drive(b, deterministic(first_bad))
    assert order.count(0) == 1, order
    assert b.result().status == "found" and b.result().first_bad == [first_bad]


def test_base_gets_the_repeats_when_it_is_the_last_good_candidate():
    b = Bisection(8)
    order = drive(b, deterministic(1))
    v = b.result()
    assert v.status == "found" and v.first_bad == [1] and v.good == 0
    assert order.count(0) == b.runs_for_good() >= 2, order
    # ... and only once the search has narrowed down to 1/8.
    base_runs = [i for i, k in enumerate(order) if k == 0]
    assert order[-1] == 0 and order.index(1) < base_runs[1], order


def test_base_once_saves_runs_over_the_old_policy():
    def runs(base_once):
        b = Bisection(16, base_once=base_once)
        drive(b, deterministic(11))
        assert b.result().first_bad == [11]
        return b.runs_used()
    # The old policy ran the base 3 times (2/2 at the tip asks for 3 clean runs).
    assert runs(False) - runs(True) == 2
