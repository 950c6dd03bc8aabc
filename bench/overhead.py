"""Orchestration overhead of a fully cached ``kto run default`` (issue 17, item 5).

    .venv/bin/python bench/overhead.py [--runs N] [--no-warmup]

Runs ``kto run default`` as a child process (the real CLI: interpreter start, imports,
everything) N times after one warm-up run (which builds the kernel, the guest image and
the KVM probe verdict if they are missing). In the child, a shim records wall-clock
intervals around every ``make`` kto starts (kconfig, build, modules_install), every
QEMU process's life (start to stop) and the guest workloads, and around kto's own
stages (source, worktree, kconfig, build store, guest image, initramfs, KVM probe,
report parsing, results). Overhead = the child's wall time minus the union of make and
QEMU time; the stage rows say where it goes. Goal: <= 5%. Writes bench/out/overhead.md.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from table import markdown, write

REPO = Path(__file__).resolve().parent.parent

# (module, attribute path, label): kto's own stages, timed in the child.
STAGES = [
    ("orchestrator.config", "load", "runs.yaml"),
    ("orchestrator.known_issues", "load_default", "known-issues.yaml"),
    ("orchestrator.source", "resolve", "source: tarball hash + cache lookup"),
    ("orchestrator.source", "Worktree.checkout", "worktree checkout"),
    ("orchestrator.source", "Worktree.__enter__", "worktree lock"),
    ("orchestrator.build", "configure", "kconfig (cached result)"),
    ("orchestrator.build", "build", "build (store hit after checkout)"),
    ("orchestrator.build", "lookup", "build store lookup (stock kernel, no worktree)"),
    ("orchestrator.image", "build_image", "guest image (cached)"),
    ("orchestrator.image", "modules_initramfs", "initramfs + modules concatenation"),
    ("orchestrator.vm", "choose_accel", "KVM probe verdict"),
    ("orchestrator.pipeline", "_collect_reports", "report parsing + symbolization"),
    ("orchestrator.results", "RunResult.write", "summary.json + junit/kcidb/html"),
]
MAKE = [("orchestrator.build", "_run_checked"), ("orchestrator.build", "_run_make")]


def _child(events_path: Path, argv: list[str]) -> int:
    """Run ``kto ARGV`` in this process with timing wrappers; write the events."""
    import importlib
    t_start = time.time()
    events: list[tuple[str, float, float]] = []

    def wrap(owner, name, label):
        orig = getattr(owner, name)

        @functools.wraps(orig)
        def timed(*a, **k):
            t = time.time()
            try:
                return orig(*a, **k)
            finally:
                events.append((label, t, time.time()))
        setattr(owner, name, timed)

    def resolve(mod, path):
        owner = importlib.import_module(mod)
        *parents, name = path.split(".")
        for p in parents:
            owner = getattr(owner, p)
        return owner, name

    for mod, path, label in STAGES:
        wrap(*resolve(mod, path), label)
    for mod, path in MAKE:
        wrap(*resolve(mod, path), "make")
    from orchestrator import vm, workload
    wrap(workload, "run", "guest workload")
    start, stop = vm.Vm.start, vm.Vm.stop

    def vm_start(self):
        self._bench_t0 = time.time()
        return start(self)

    def vm_stop(self):
        try:
            return stop(self)
        finally:
            if getattr(self, "_bench_t0", None) is not None:
                events.append(("qemu", self._bench_t0, time.time()))
                self._bench_t0 = None
    vm.Vm.start, vm.Vm.stop = vm_start, vm_stop

    from orchestrator.cli import main
    t_main = time.time()
    code = main(argv)
    events_path.write_text(json.dumps({"imports": [t_start, t_main], "events": events}))
    return code


def union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def minus(interval: tuple[float, float], cover: list[tuple[float, float]]) -> float:
    """Length of ``interval`` not covered by ``cover``."""
    a, b = interval
    inside = union([(max(a, x), min(b, y)) for x, y in cover if min(b, y) > max(a, x)])
    return (b - a) - inside


def one_run(results: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        events_path = Path(fh.name)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(events_path),
            "--", "run", "default", "--results", str(results)]
    t0 = time.time()
    cp = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                        text=True)
    t1 = time.time()
    if cp.returncode not in (0, 1):
        raise SystemExit(f"kto run default: exit {cp.returncode}\n{cp.stdout[-2000:]}"
                         f"{cp.stderr[-2000:]}")
    data = json.loads(events_path.read_text())
    events_path.unlink()
    summary = sorted(results.glob("default-*/summary.json"), key=lambda p: p.stat().st_mtime)[-1]
    job = json.loads(summary.read_text())["jobs"][0]
    ev = data["events"]
    make = [(a, b) for k, a, b in ev if k == "make"]
    qemu = [(a, b) for k, a, b in ev if k == "qemu"]
    work = [(a, b) for k, a, b in ev if k == "guest workload"]
    busy = make + qemu
    own = [(k, a, b) for k, a, b in ev if k not in ("make", "qemu", "guest workload")]
    stages: dict[str, float] = {}
    for k, a, b in own:
        # Exclusive time: not in make or QEMU, nor in a stage nested inside this one.
        nested = [(x, y) for j, x, y in own if a <= x and y <= b and (x, y) != (a, b)]
        stages[k] = stages.get(k, 0.0) + minus((a, b), busy + nested)
    wall = t1 - t0
    return {
        "wall": wall, "make": union(make), "qemu": union(qemu), "workloads": union(work),
        "boot": job.get("boot", {}).get("seconds", 0.0), "build_status": job["build"]["status"],
        "overhead": wall - union(busy), "stages": stages,
        "interpreter + imports": data["imports"][1] - t0, "exit": cp.returncode,
    }


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return _child(Path(sys.argv[2]), sys.argv[4:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="measured runs (median)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the warm-up run (the cache is known to be warm)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kto-overhead-") as tmp:
        results = Path(tmp)
        if not args.no_warmup:
            w = one_run(results)
            print(f"warm-up: {w['wall']:.1f}s (build {w['build_status']})", flush=True)
        runs = []
        for i in range(args.runs):
            r = one_run(results)
            runs.append(r)
            print(f"run {i + 1}: {r['wall']:.1f}s wall, overhead {r['overhead']:.1f}s "
                  f"({100 * r['overhead'] / r['wall']:.1f}%), build {r['build_status']}",
                  flush=True)
        # The store entry survives the temporary results: boot_compare.py uses it.
        keep = REPO / "results"
        keep.mkdir(exist_ok=True)
        last = sorted(results.glob("default-*"), key=lambda p: p.stat().st_mtime)[-1]
        shutil.copytree(last, keep / last.name)

    med = sorted(runs, key=lambda r: r["overhead"] / r["wall"])[len(runs) // 2]
    pct = 100 * med["overhead"] / med["wall"]
    lines = [f"Orchestration overhead of a fully cached `kto run default` (x86_64, vmalloc "
             f"fast), {time.strftime('%Y-%m-%d')}, {len(runs)} runs after a warm-up on this "
             f"machine ({os.cpu_count()} cores); the median run by overhead share:", "",
             *markdown(["part", "seconds", "share"], [
                 ("wall time (process start to exit)", f"{med['wall']:.1f}", "100%"),
                 ("make (kconfig, build, modules_install)", f"{med['make']:.1f}",
                  f"{100 * med['make'] / med['wall']:.1f}%"),
                 (f"QEMU running (boot {med['boot']:.1f} s + guest workloads "
                  f"{med['workloads']:.1f} s + shutdown)", f"{med['qemu']:.1f}",
                  f"{100 * med['qemu'] / med['wall']:.1f}%"),
                 ("**orchestration overhead**", f"**{med['overhead']:.1f}**",
                  f"**{pct:.1f}%**")]),
             "", "Where the overhead goes (time outside make and QEMU):", "",
             *markdown(["stage", "seconds"], [
                 ("interpreter start + imports", f"{med['interpreter + imports']:.2f}"),
                 *((k, f"{v:.2f}") for k, v in sorted(med["stages"].items(),
                                                      key=lambda kv: -kv[1]))])]
    shares = ", ".join(f"{100 * r['overhead'] / r['wall']:.1f}%" for r in runs)
    lines += ["", f"Goal: <= 5%. Measured: {pct:.1f}% (all runs: {shares}; "
              f"median wall {statistics.median(r['wall'] for r in runs):.1f} s)."]
    text = "\n".join(lines) + "\n"
    write("overhead.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
