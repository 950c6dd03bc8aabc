"""Workloads: YAML files in workloads/ that say what to run in the guest and how to read
the results. This module validates them and runs them over a booted VM."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from orchestrator import schema
from orchestrator.errors import ConfigError
from orchestrator.vm import Vm

STATUSES = ("pass", "fail", "skip", "xfail", "timeout", "error")

WORKLOAD_SCHEMA = schema.Mapping({
    "name": schema.Str(),
    "description": schema.Str(),
    "kind": schema.Choice(["module"]),
    "module": schema.Str(),
    "requires": schema.Mapping({"kconfig": schema.List(schema.Str())}),
    "presets": schema.Dict(schema.List(schema.Str())),
    "preset": schema.Str(),
    "timeout": schema.Int(minimum=1),
    "results": schema.Choice(["vmalloc-summary", "kunit-tap"]),
    "expected_failures": schema.List(schema.Str()),
    "expected_reports": schema.Bool(),
}, required=["name", "kind", "module", "presets", "preset", "results"])


@dataclass
class Workload:
    name: str
    path: Path
    kind: str
    module: str
    presets: dict[str, list[str]]
    preset: str
    results: str
    timeout: int = 900
    description: str = ""
    requires_kconfig: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)
    expected_reports: bool = False


def workloads_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "workloads"


def available(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or workloads_dir()).glob("*.yaml"))


def load(name: str, directory: Path | None = None) -> Workload:
    path = (directory or workloads_dir()) / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown workload {name!r} (known: {', '.join(available(directory))})")
    data, lines = schema.load_yaml(path, WORKLOAD_SCHEMA)
    if data["name"] != path.stem:
        raise schema.error_at(path, lines, "name",
                              f"{data['name']!r} must match the file name {path.stem!r}")
    if data["preset"] not in data["presets"]:
        raise schema.error_at(path, lines, "preset", f"{data['preset']!r} is not one of the "
                              f"presets ({', '.join(data['presets'])})")
    return Workload(name=data["name"], path=path, kind=data["kind"], module=data["module"],
                    presets=data["presets"], preset=data["preset"], results=data["results"],
                    timeout=data.get("timeout", 900), description=data.get("description", ""),
                    requires_kconfig=data.get("requires", {}).get("kconfig", []),
                    expected_failures=data.get("expected_failures", []),
                    expected_reports=data.get("expected_reports", False))


@dataclass
class TestResult:
    name: str
    status: str           # one of STATUSES
    detail: str = ""


@dataclass
class WorkloadResult:
    workload: str
    status: str           # "pass" | "fail" | "skip" | "timeout" | "error"
    tests: list[TestResult]
    seconds: float
    reason: str = ""
    output: str = ""      # the guest output the results were read from
    console_span: tuple[int, int] | None = None   # console log lines while it ran

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for t in self.tests:
            out[t.status] += 1
        return {k: v for k, v in out.items() if v}


# -- result parsers: guest text -> per-test results --

_VMALLOC_SUMMARY = re.compile(r"Summary: (\w+) passed: (\d+) failed: (\d+)")


def parse_vmalloc_summary(text: str, expected_failures: list[str]) -> list[TestResult]:
    tests = []
    for name, passed, failed in _VMALLOC_SUMMARY.findall(text):
        detail = f"passed {passed} failed {failed}"
        if name in expected_failures:
            status = "xfail" if int(failed) else "fail"
            detail += " (expected to fail)" if int(failed) else " (expected to fail, but passed)"
        else:
            status = "fail" if int(failed) or not int(passed) else "pass"
        tests.append(TestResult(name, status, detail))
    return tests


_TAP = re.compile(r"^\s*(not ok|ok) (\d+) ([^#\n]+?)\s*(?:#\s*(\w+)(.*))?$", re.M)


def parse_kunit_tap(text: str, expected_failures: list[str]) -> list[TestResult]:
    """KUnit's TAP in dmesg: test cases are indented one level under their suite."""
    tests = []
    for m in _TAP.finditer(text):
        line = text[m.start():m.end()]
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            continue      # the suite line itself
        ok, name, directive = m.group(1) == "ok", m.group(3).strip(), (m.group(4) or "").upper()
        if directive == "SKIP":
            status = "skip"
        elif name in expected_failures:
            status = "xfail" if not ok else "fail"
        else:
            status = "pass" if ok else "fail"
        tests.append(TestResult(name, status, (m.group(5) or "").strip()))
    return tests


PARSERS = {"vmalloc-summary": parse_vmalloc_summary, "kunit-tap": parse_kunit_tap}

_PREFIX = re.compile(r"^(?:<\d+>)?\[[^\]]*\](?:\[[^\]]*\])? ?", re.M)


def strip_printk_prefix(text: str) -> str:
    """Drop '[   12.3][ T42] ' timestamps/callers so parsers see the message only."""
    return _PREFIX.sub("", text)


# -- runner --

def run(vm: Vm, wl: Workload, kernel_release: str, preset: str | None = None,
        nproc: int = 2) -> WorkloadResult:
    t0 = time.monotonic()
    params = [p.replace("$NPROC", str(nproc)) for p in wl.presets[preset or wl.preset]]
    mark = f"kto-workload-{wl.name}-{int(time.time() * 1000)}"
    vm.run(["sh", "-c", 'echo "$1" > /dev/kmsg', "sh", mark], timeout=60)
    find = vm.run(["find", f"/lib/modules/{kernel_release}", "-name", f"{wl.module}.ko"],
                  timeout=60)
    ko = find.stdout.strip().splitlines()[:1]
    if not ko:
        return WorkloadResult(wl.name, "error", [], time.monotonic() - t0,
                              f"{wl.module}.ko not in /lib/modules/{kernel_release}")
    load = vm.run(["kto-insmod", ko[0], *params], timeout=wl.timeout)
    if load.timed_out or load.exit_code is None:
        why = "timed out" if load.timed_out else "guest died"
        return WorkloadResult(wl.name, "timeout" if load.timed_out else "error", [],
                              time.monotonic() - t0, f"loading {wl.module} {why}")
    dmesg = vm.run(["dmesg"], timeout=120).stdout
    output = dmesg[dmesg.find(mark):] if mark in dmesg else dmesg
    tests = PARSERS[wl.results](strip_printk_prefix(output), wl.expected_failures)
    status = "fail" if any(t.status in ("fail", "timeout", "error") for t in tests) else "pass"
    reason = "" if tests else f"no results in dmesg ({load.stdout.strip()})"
    if not tests:
        status = "error"
    vm.run(["rmmod", wl.module], timeout=120)
    return WorkloadResult(wl.name, status, tests, time.monotonic() - t0, reason, output)
