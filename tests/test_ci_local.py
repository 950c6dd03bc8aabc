"""The generated GitLab pipeline, run for real by gitlab-ci-local (its shell executor) on
this machine, night after night (make test-ci).

A project made of this checkout's files, with one small run added to its runs.yaml
(``ci-small``: the ``examples`` kernel on x86_64, only test_vmalloc's vm_map_ram test),
and the pipeline ``kto ci gitlab ci-small --shards 2 --image none`` prints (shard 2 has no
job: it must pass too). Three nights, each a whole pipeline (both shards, the merge, the
nightly), with gitlab-ci-local's cache as the CI cache between them:

1. the bad example series (patches/examples/kasan-vmalloc.mbox) is in: two NEW titles,
   the merge job fails (red) -- and its history must still be saved;
2. the series is still in: the same titles are STILL, not NEW, exit 0 (green);
3. the series is reverted: both titles FIXED, exit 0.

The jobs inherit the runner's environment: a KTO_CACHE set for the test run is the
runner's persistent cache (default ~/.cache/kto), so the kernels are build-store hits
once built (the stock one is the `default` run's; the series one is built by
make test-bisect or by the first night, incrementally).
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ci

REPO = Path(__file__).resolve().parent.parent
GCL = REPO / ".ci-tools" / "node_modules" / ".bin" / "gitlab-ci-local"
BAD_SERIES = "examples/kasan-vmalloc.mbox"
TITLES = ["KASAN: slab-out-of-bounds Read in vm_map_ram", "WARNING in vm_map_ram"]
RUN = """
  ci-small:
    description: make test-ci -- the examples kernel, vm_map_ram test only
    arches: [x86_64]
    workloads: [vmalloc]
    presets: {{vmalloc: vm_map_ram}}
{patches}"""


def git(cwd, *argv):
    subprocess.run(["git", "-c", "user.name=kto-test", "-c", "user.email=kto@localhost",
                    *argv], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    if not GCL.exists():
        pytest.fail(f"{GCL} missing: run scripts/setup-ci-local.sh (make test-ci does)")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    p = tmp_path_factory.mktemp("ci-local") / "project"
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (p / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, p / f)
    git(p, "init", "-q", "-b", "main")
    return p


def night(project: Path, patches: str | None) -> tuple[int, str]:
    """One nightly pipeline: runs.yaml with or without the bad series, the generated
    .gitlab-ci.yml, a commit, then gitlab-ci-local. Returns (exit status, its output)."""
    runs = (REPO / "runs.yaml").read_text() + RUN.format(
        patches=f"    patches: {patches}\n" if patches else "")
    (project / "runs.yaml").write_text(runs)
    gen = subprocess.run([sys.executable, "-m", "orchestrator", "ci", "gitlab", "ci-small",
                          "--shards", "2", "--image", "none"], cwd=project,
                         capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    (project / ".gitlab-ci.yml").write_text(gen.stdout)
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", f"night: {patches or 'stock'}")
    # the runner's environment (KTO_CACHE included) reaches the jobs; no git remote here
    out = subprocess.run([GCL, "--shell-isolation", "--no-artifacts-to-source",
                          "--variable", "CI_PIPELINE_SOURCE=schedule", "--no-color",
                          "--timestamps"], cwd=project, capture_output=True, text=True,
                         timeout=3600)
    log = out.stdout + out.stderr
    (project.parent / f"night-{len(list(project.parent.glob('night-*.log'))) + 1}.log"
     ).write_text(log)
    return out.returncode, log


def job_lines(log: str, job: str) -> list[str]:
    """The output lines of one job (gitlab-ci-local prefixes them with the job name)."""
    out = []
    for line in log.splitlines():
        # "[17:43:19 53 ms] kto-shard: [1/2] > text" / "[...] kto-merge        > text"
        m = re.match(rf"^(?:\[[^\]]*\]\s+)?{re.escape(job)}(?:: \[\d+/\d+\])?\s+> ?(.*)$",
                     line)
        if m:
            out.append(m.group(1))
    return out


def history_runs(project: Path) -> list[tuple]:
    db = project / ".gitlab-ci-local" / "cache" / "kto-history-ci-small" / ".kto-history" \
        / "history.sqlite"
    assert db.exists(), "the merge job's cache (the history) was not saved"
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, exit_code, directory FROM runs ORDER BY id").fetchall()
    finally:
        con.close()


def test_three_nights_under_gitlab_ci_local(project):
    # night 1: the bad series -- red, two new titles; the history is saved anyway
    rc, log = night(project, BAD_SERIES)
    merge = job_lines(log, "kto-merge")
    assert rc != 0, log[-3000:]
    for t in TITLES:
        assert any(l.startswith(f"NEW       {t}  -- new;") for l in merge), merge
    assert any(l.startswith("nightly: RED (exit 1") for l in merge), merge
    assert "shard 2/2" not in "\n".join(merge)           # the empty shard merged fine
    assert len(history_runs(project)) == 1

    # night 2: still there -- STILL, not NEW, green, from the red night's history
    rc, log = night(project, BAD_SERIES)
    merge = job_lines(log, "kto-merge")
    assert rc == 0, log[-3000:]
    for t in TITLES:
        assert any(l.startswith(f"STILL     {t}  -- still present (since ") and
                   "2 runs in a row" in l for l in merge), merge
    assert not any(l.startswith("NEW ") for l in merge), merge
    assert "no new reports" in merge
    assert any(l.startswith("nightly: GREEN (exit 0") for l in merge), merge
    runs = history_runs(project)
    assert [r[1] for r in runs] == [1, 1]        # each night's own (kto run) exit status
    assert runs[0][2] == runs[1][2]              # the same merged/ path: two nights

    # night 3: the series reverted -- both titles fixed, green
    rc, log = night(project, None)
    merge = job_lines(log, "kto-merge")
    assert rc == 0, log[-3000:]
    for t in TITLES:
        assert any(l.startswith(f"FIXED     {t}  -- fixed (last seen ") for l in merge), merge
    assert any(l.startswith("nightly: GREEN (exit 0") for l in merge), merge
    assert len(history_runs(project)) == 3
    # the stock kernel was a build-store hit from the runner's persistent cache
    shard = job_lines(log, "kto-shard")
    assert any(re.search(r"x86_64: build cached in \d+s", l) for l in shard), shard
