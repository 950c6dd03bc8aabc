"""kto ci gitlab|github RUN --shards N: print a ready nightly pipeline that runs
``kto run RUN --shard I/N`` as N parallel CI jobs and a merge job (kto merge, then
kto nightly --from-results with the history database kept in the CI cache).

What makes it run night after night (docs/nightly.md, "Running it in CI"):

- runners: Debian 12 with root or sudo (``make setup`` installs QEMU, cross compilers...),
  or the ``--image`` container (default ``debian:12``; ``--image none`` for shell runners);
  a runner-provided ``KTO_CACHE`` (persistent, e.g. a volume) is honoured: the jobs never
  set it, so builds are store hits or incremental;
- job timeouts from the run's own timeouts (build + boot + workloads per job of the
  largest shard, plus set-up), so the CI system never kills a run kto would finish;
- nightly schedules only (GitLab ``workflow: rules``; GitHub ``schedule``), plus manual;
- the history database is cached with ``when: always`` / ``if: always()``: a red night
  keeps its history (GitLab saves caches only on success otherwise);
- JUnit is published once, by the merge job, from the merged results;
- ``--require-kvm``: a shard fails loudly (exit 2) on a runner without usable KVM, before
  it runs, and when any guest of the runner's own arch ran under TCG after all.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import yaml

from orchestrator.commands import options
from orchestrator.commands.run import load_run

HISTORY_DIR = ".kto-history"
SETUP_SECONDS = 15 * 60       # make setup on a fresh runner (apt + venv), source import
MERGE_TIMEOUT_MIN = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ci", help="print a GitLab CI or GitHub Actions nightly pipeline",
                       description="Print a nightly pipeline file that runs RUN as N shards "
                       "in parallel (kto run RUN --shard I/N) and merges them (kto merge; kto "
                       "nightly --from-results DIR with the history database in the CI "
                       "cache, saved on red nights too). Save it as .gitlab-ci.yml or "
                       ".github/workflows/kto.yml. Runner set-up: docs/nightly.md.")
    p.add_argument("system", choices=["gitlab", "github"],
                   help="gitlab (.gitlab-ci.yml) or github (a workflow file)")
    p.add_argument("name", help="run name")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="parallel CI jobs, each running one shard of the run's jobs "
                   "(default: 1; kto plan RUN --shards N shows the split)")
    options.add_runs(p)
    p.add_argument("--runner", metavar="LABEL", default=None,
                   help="GitLab runner tag / GitHub self-hosted runner label (default: "
                   "none / any self-hosted runner)")
    p.add_argument("--image", default="debian:12", metavar="IMAGE",
                   help="GitLab: container image of the jobs (default: debian:12; 'none' "
                   "for shell runners). GitHub jobs run on the self-hosted runner itself")
    p.add_argument("--require-kvm", action="store_true",
                   help="fail a shard (exit 2) when its runner has no usable KVM instead "
                   "of falling back to TCG (about 10x slower)")
    p.add_argument("--cron", default="0 2 * * *", metavar="SPEC",
                   help="GitHub schedule (default: '0 2 * * *'); on GitLab set the "
                   "schedule in CI/CD > Schedules")
    p.set_defaults(func=main)


def _kto(*argv: str) -> str:
    return " ".join([".venv/bin/kto", *(a if a.startswith("$") or "${" in a or "$(" in a
                                        else shlex.quote(a) for a in argv)])


def shard_timeout_minutes(cfg, n: int) -> int:
    """Upper bound of one shard's wall time from the run's own timeouts: every job of the
    largest shard may take its build, boot and every workload timeout (kto stops each
    phase at its timeout), plus runner set-up. Rounded up to 10 minutes."""
    from orchestrator import plan
    jobs = plan.expand(cfg)
    per_shard = max((len(plan.shard(jobs, i, n)) for i in range(1, n + 1)), default=0)
    t = cfg.timeouts
    job_s = t.build + t.boot + t.workload * max(1, len(cfg.workloads))
    total = SETUP_SECONDS + per_shard * job_s
    return -(-total // 600) * 10


def _minutes(m: int) -> str:
    if m < 60:
        return f"{m}m"
    return f"{m // 60}h" + (f" {m % 60}m" if m % 60 else "")


KVM_PRECHECK = ('test -r /dev/kvm -a -w /dev/kvm || { echo "kto: --require-kvm: this runner '
                'has no usable /dev/kvm (see docs/nightly.md)" >&2; exit 2; }')


def _kvm_postcheck(results: str) -> str:
    return f".venv/bin/python -m orchestrator.commands.ci --check-kvm {results}"


# Jobs in a container start without make/python3: install just what `make setup` needs;
# on a shell runner both are there and this does nothing.
BOOTSTRAP = ('command -v make >/dev/null && command -v python3 >/dev/null || '
             '{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q '
             'make python3 python3-venv sudo; }')


def gitlab(cfg, runs_file: str, n: int, runner: str | None, image: str | None,
           require_kvm: bool) -> dict:
    run = cfg.name
    results = "results/shard-${CI_NODE_INDEX}"
    script = ["make setup"] + ([KVM_PRECHECK] if require_kvm else []) + [
        _kto("run", run, "--runs", runs_file, "--shard", "${CI_NODE_INDEX}/${CI_NODE_TOTAL}",
             "--results", results)
        + " || [ $? -eq 1 ]"]          # 1 = test failures or kernel reports: merge decides
    if require_kvm:
        script.append(_kvm_postcheck(results))
    shard = {"stage": "test", "timeout": _minutes(shard_timeout_minutes(cfg, n)),
             "script": script,
             # no JUnit here: the merge job publishes it once, for the whole run
             "artifacts": {"when": "always", "paths": ["results/"], "expire_in": "30 days"}}
    if n > 1:
        shard["parallel"] = n
    else:
        shard["variables"] = {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1"}
    merge = {
        "stage": "merge", "when": "always", "timeout": f"{MERGE_TIMEOUT_MIN}m",
        "needs": [{"job": "kto-shard", "artifacts": True}],
        # when: always -- GitLab saves caches of failed jobs only with it: a red night's
        # history must reach the next night
        "cache": {"key": f"kto-history-{run}", "paths": [f"{HISTORY_DIR}/"],
                  "when": "always"},
        # no QEMU or compilers here: the Python package is enough
        "script": ["python3 -m venv .venv", ".venv/bin/pip install -q -e .",
                   "rm -rf merged",
                   _kto("merge", "results", "--out", "merged", "--log-base-url",
                        '"${CI_JOB_URL}/artifacts/raw/merged/"') + " || [ $? -eq 1 ]",
                   _kto("nightly", "--from-results", "merged", "--known", "known-issues.yaml",
                        "--db", f"{HISTORY_DIR}/history.sqlite")],
        "artifacts": {"when": "always", "paths": ["merged/"], "expose_as": "kto report",
                      "expire_in": "90 days", "reports": {"junit": "merged/junit.xml"}},
    }
    if runner:
        shard["tags"] = merge["tags"] = [runner]
    default = {"before_script": [BOOTSTRAP]}
    if image:
        default = {"image": image, **default}
    return {
        # nightly: scheduled pipelines (CI/CD > Schedules) and manual runs only, not pushes
        "workflow": {"rules": [{"if": '$CI_PIPELINE_SOURCE == "schedule"'},
                               {"if": '$CI_PIPELINE_SOURCE == "web"'},
                               {"if": '$CI_PIPELINE_SOURCE == "api"'}]},
        "stages": ["test", "merge"], "default": default,
        "kto-shard": shard, "kto-merge": merge}


CHECKOUT = {"uses": "actions/checkout@v6"}
UPLOAD = "actions/upload-artifact@v6"
DOWNLOAD = "actions/download-artifact@v7"
CACHE_RESTORE = "actions/cache/restore@v5"
CACHE_SAVE = "actions/cache/save@v5"


def github(cfg, runs_file: str, n: int, runner: str | None, require_kvm: bool,
           cron: str) -> dict:
    run = cfg.name
    runs_on = ["self-hosted", runner] if runner else ["self-hosted"]
    results = "results/shard-${{ matrix.shard }}"
    steps = [CHECKOUT, {"run": "make setup"}]
    if require_kvm:
        steps.append({"name": "require KVM", "run": KVM_PRECHECK})
    steps.append({"name": "kto run (one shard)",
                  "run": _kto("run", run, "--runs", runs_file,
                              "--shard", f"${{{{ matrix.shard }}}}/{n}", "--results", results)
                  + " || [ $? -eq 1 ]"})
    if require_kvm:
        steps.append({"name": "guests ran under KVM", "run": _kvm_postcheck(results)})
    steps.append({"uses": UPLOAD, "if": "always()",
                  "with": {"name": "kto-shard-${{ matrix.shard }}", "path": results}})
    key = f"kto-history-{run}-${{{{ github.run_id }}}}"
    return {
        "name": f"kto {run}",
        "on": {"schedule": [{"cron": cron}], "workflow_dispatch": {}},
        "concurrency": {"group": f"kto-{run}", "cancel-in-progress": False},
        "jobs": {
            "shard": {
                "runs-on": runs_on,
                "timeout-minutes": shard_timeout_minutes(cfg, n),
                "strategy": {"fail-fast": False, "matrix": {"shard": list(range(1, n + 1))}},
                "steps": steps},
            "merge": {
                "runs-on": runs_on, "needs": "shard", "if": "always()",
                "timeout-minutes": MERGE_TIMEOUT_MIN,
                "steps": [
                    CHECKOUT,
                    {"run": "python3 -m venv .venv && .venv/bin/pip install -q -e ."},
                    {"uses": DOWNLOAD, "with": {"pattern": "kto-shard-*", "path": "results"}},
                    {"uses": CACHE_RESTORE,
                     "with": {"path": HISTORY_DIR, "key": key,
                              "restore-keys": f"kto-history-{run}-"}},
                    {"run": "rm -rf merged && " + _kto("merge", "results", "--out", "merged")
                     + " || [ $? -eq 1 ]"},
                    {"id": "nightly",
                     "run": _kto("nightly", "--from-results", "merged", "--known",
                                 "known-issues.yaml", "--db", f"{HISTORY_DIR}/history.sqlite")},
                    {"uses": CACHE_SAVE, "if": "always()",
                     "with": {"path": HISTORY_DIR, "key": key}},
                    {"uses": UPLOAD, "if": "always()",
                     "with": {"name": "kto-merged", "path": "merged"}},
                ]},
        },
    }


def render(system: str, cfg, runs_file: str, n: int, runner: str | None = None,
           image: str | None = "debian:12", require_kvm: bool = False,
           cron: str = "0 2 * * *") -> str:
    if system == "gitlab":
        data = gitlab(cfg, runs_file, n, runner, image, require_kvm)
    else:
        data = github(cfg, runs_file, n, runner, require_kvm, cron)
    argv = ["kto", "ci", system, cfg.name, "--shards", str(n)]
    argv += ["--runner", runner] if runner else []
    argv += ["--image", image or "none"] if system == "gitlab" and image != "debian:12" else []
    argv += ["--require-kvm"] if require_kvm else []
    head = (f"# Generated by: {shlex.join(argv)}\n"
            f"# {n} shard job(s) run `kto run {cfg.name} --shard I/{n}` (see `kto plan "
            f"{cfg.name} --shards {n}`),\n# then one job merges them and compares with the "
            "history (docs/nightly.md).\n# Runners: Debian 12 with root or sudo for `make "
            "setup`; a persistent KTO_CACHE set by the runner\n# keeps builds warm "
            "(docs/nightly.md, \"Running it in CI\").\n")
    return head + yaml.dump(data, Dumper=_NoAliases, sort_keys=False, width=1000)


class _NoAliases(yaml.SafeDumper):
    """GitHub Actions does not accept YAML anchors/aliases: write repeats out."""

    def ignore_aliases(self, data):
        return True


def check_kvm(root: Path) -> int:
    """--require-kvm, after a shard ran: exit 2 if a guest of this machine's own arch
    booted under TCG (kto falls back to TCG when its KVM probe boot fails)."""
    from orchestrator import results
    from orchestrator.arch import ARCHES
    here = platform.machine()
    tcg = []
    for summary in sorted(Path(root).rglob("summary.json")):
        r = results.load(summary.parent)
        for j in r.jobs:
            a = ARCHES.get(j.arch)
            if a and a.uname == here and j.boot.get("accel") == "tcg":
                tcg.append(j.id)
    if tcg:
        print(f"kto: --require-kvm: guests ran under TCG on this runner ({', '.join(tcg)}): "
              "KVM did not boot a kernel here (see docs/nightly.md)", file=sys.stderr)
        return 2
    return 0


def main(args: argparse.Namespace) -> int:
    from orchestrator.errors import ConfigError
    if args.shards < 1:
        raise ConfigError(f"--shards {args.shards}: must be at least 1")
    cfg = load_run(args.runs, args.name)
    image = None if args.image in ("", "none") else args.image
    print(render(args.system, cfg, str(args.runs or "runs.yaml"), args.shards, args.runner,
                 image, args.require_kvm, args.cron), end="")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-kvm":
        sys.exit(check_kvm(Path(sys.argv[2])))
    sys.exit(f"usage: python -m {__spec__.name} --check-kvm RESULTS_DIR")
