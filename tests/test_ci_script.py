""".ci/run's shape: every step is a Makefile target (the README's test command first after
set-up), the build lane is a background kto build, and bench/ci_cold.py reads the lines
its step function prints."""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import ci_cold  # noqa: E402


def test_every_step_is_a_makefile_target_and_make_test_comes_first():
    script = (REPO / ".ci/run").read_text()
    steps = re.findall(r"^step (\S+)$", script, re.M)
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    assert steps[:2] == ["setup", "test"], steps
    assert set(steps) <= targets, set(steps) - targets
    for marker in ("arches", "bisect", "vmemmap", "ci", "race"):   # every slow marker's target
        assert f"test-{marker}" in steps
    assert re.search(r"kto build --background ", script)
    assert "trap " in script                       # the lane never outlives .ci/run


def test_the_lane_session_lowers_its_own_autogroup_before_building():
    # setsid makes the lane an autogroup of its own: its nice only counts inside it, so the
    # session's autogroup itself is set to 19 before the first build starts.
    script = (REPO / ".ci/run").read_text()
    lane = script[script.index('setsid bash -c "'):]
    assert lane.index("echo 19 >/proc/self/autogroup") < lane.index("kto build --background")


def test_ci_cold_reads_step_lines_failures_included():
    log = ("noise\nci: make setup: 15 s, exit 0\n"
           "ci: make test: 1899 s, exit 2\nci: make test-bisect: 0 s, exit 0 and more\n")
    assert ci_cold.target_times(log) == [("setup", 15, 0), ("test", 1899, 2)]
