"""kto ci gitlab|github RUN --shards N: print a ready pipeline that runs
``kto run RUN --shard I/N`` as N parallel CI jobs and a merge job (kto merge, then
kto nightly --from-results with a cached history database).

Runners must be Debian 12 machines (or containers) where `make setup` can install kto's
packages (root or sudo), with KVM if available; a persistent ~/.cache/kto on the runner
makes builds incremental (the first build of each arch takes 10-20 minutes)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import yaml

from orchestrator.commands import options
from orchestrator.commands.run import load_run

HISTORY_DIR = ".kto-history"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ci", help="print a GitLab CI or GitHub Actions pipeline for a run",
                       description="Print a pipeline file that runs RUN as N shards in "
                       "parallel (kto run RUN --shard I/N) and merges them (kto merge; kto "
                       "nightly --from-results DIR with the history database kept in the CI "
                       "cache). Save it as .gitlab-ci.yml or .github/workflows/kto.yml.")
    p.add_argument("system", choices=["gitlab", "github"],
                   help="gitlab (.gitlab-ci.yml) or github (a workflow file)")
    p.add_argument("name", help="run name")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="parallel CI jobs, each running one shard of the run's jobs "
                   "(default: 1; kto plan RUN --shards N shows the split)")
    options.add_runs(p)
    p.add_argument("--runner", metavar="LABEL", default=None,
                   help="GitLab runner tag / GitHub runs-on label (default: none / "
                   "self-hosted)")
    p.set_defaults(func=main)


def _kto(*argv: str) -> str:
    return " ".join([".venv/bin/kto", *(a if a.startswith("$") or "${" in a or "$(" in a
                                        else shlex.quote(a) for a in argv)])


def gitlab(run: str, runs_file: str, n: int, runner: str | None) -> dict:
    shard = {
        "stage": "test",
        "script": ["make setup",
                   _kto("run", run, "--runs", runs_file,
                        "--shard", "${CI_NODE_INDEX}/${CI_NODE_TOTAL}",
                        "--results", "results/shard-${CI_NODE_INDEX}")],
        "artifacts": {"when": "always", "paths": ["results/"],
                      "reports": {"junit": "results/shard-*/*/junit.xml"}},
        # 1 = test failures or kernel reports: the merge job gives the verdict
        "allow_failure": {"exit_codes": [1]},
    }
    if n > 1:
        shard["parallel"] = n
    else:
        shard["variables"] = {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1"}
    merge = {
        "stage": "merge", "when": "always", "needs": ["kto-shard"],
        "cache": {"key": f"kto-history-{run}", "paths": [f"{HISTORY_DIR}/"]},
        "script": ["python3 -m venv .venv", ".venv/bin/pip install -q -e .",
                   _kto("merge", "results", "--out", "merged") + " || [ $? -eq 1 ]",
                   _kto("nightly", "--from-results", "merged", "--known", "known-issues.yaml",
                        "--db", f"{HISTORY_DIR}/history.sqlite")],
        "artifacts": {"when": "always", "paths": ["merged/"], "expose_as": "kto report",
                      "reports": {"junit": "merged/junit.xml"}},
    }
    if runner:
        shard["tags"] = merge["tags"] = [runner]
    return {"stages": ["test", "merge"], "kto-shard": shard, "kto-merge": merge}


def github(run: str, runs_file: str, n: int, runner: str | None) -> dict:
    runs_on = runner or "self-hosted"
    shards = list(range(1, n + 1))
    checkout = {"uses": "actions/checkout@v4"}
    return {
        "name": f"kto {run}",
        "on": {"schedule": [{"cron": "0 2 * * *"}], "workflow_dispatch": {}},
        "jobs": {
            "shard": {
                "runs-on": runs_on,
                "strategy": {"fail-fast": False, "matrix": {"shard": shards}},
                "steps": [
                    checkout,
                    {"run": "make setup"},
                    {"name": "kto run (one shard)",
                     "run": _kto("run", run, "--runs", runs_file,
                                 "--shard", f"${{{{ matrix.shard }}}}/{n}",
                                 "--results", "results/shard-${{ matrix.shard }}")
                     + " || [ $? -eq 1 ]"},
                    {"uses": "actions/upload-artifact@v4", "if": "always()",
                     "with": {"name": "kto-shard-${{ matrix.shard }}",
                              "path": "results/shard-${{ matrix.shard }}"}},
                ]},
            "merge": {
                "runs-on": runs_on, "needs": "shard", "if": "always()",
                "steps": [
                    checkout,
                    {"run": "python3 -m venv .venv && .venv/bin/pip install -q -e ."},
                    {"uses": "actions/download-artifact@v4",
                     "with": {"pattern": "kto-shard-*", "path": "results"}},
                    {"uses": "actions/cache/restore@v4",
                     "with": {"path": HISTORY_DIR, "key": f"kto-history-{run}-${{{{ github.run_id }}}}",
                              "restore-keys": f"kto-history-{run}-"}},
                    {"run": _kto("merge", "results", "--out", "merged")
                     + " || [ $? -eq 1 ]"},
                    {"id": "nightly",
                     "run": _kto("nightly", "--from-results", "merged", "--known",
                                 "known-issues.yaml", "--db", f"{HISTORY_DIR}/history.sqlite")},
                    {"uses": "actions/cache/save@v4", "if": "always()",
                     "with": {"path": HISTORY_DIR,
                              "key": f"kto-history-{run}-${{{{ github.run_id }}}}"}},
                    {"uses": "actions/upload-artifact@v4", "if": "always()",
                     "with": {"name": "kto-merged", "path": "merged"}},
                ]},
        },
    }


def render(system: str, run: str, runs_file: str, n: int, runner: str | None = None) -> str:
    data = (gitlab if system == "gitlab" else github)(run, runs_file, n, runner)
    head = (f"# Generated by: kto ci {system} {run} --shards {n}\n"
            f"# {n} shard job(s) run `kto run {run} --shard I/{n}` (see `kto plan {run} "
            f"--shards {n}`),\n# then one job merges them and compares with the history "
            "(docs/nightly.md).\n# Runners: Debian 12 with root or sudo for `make setup`; "
            "keep ~/.cache/kto between jobs.\n")
    return head + yaml.dump(data, Dumper=_NoAliases, sort_keys=False, width=1000)


class _NoAliases(yaml.SafeDumper):
    """GitHub Actions does not accept YAML anchors/aliases: write repeats out."""

    def ignore_aliases(self, data):
        return True


def main(args: argparse.Namespace) -> int:
    from orchestrator.errors import ConfigError
    if args.shards < 1:
        raise ConfigError(f"--shards {args.shards}: must be at least 1")
    cfg = load_run(args.runs, args.name)
    print(render(args.system, cfg.name, str(args.runs or "runs.yaml"), args.shards, args.runner), end="")
    return 0
