"""Workloads: YAML files in workloads/ that say what to run in the guest and how to read
the results. This module validates them and runs them over a booted VM."""
from __future__ import annotations

import copy
import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from orchestrator import schema
from orchestrator.errors import ConfigError, KtoError
from orchestrator.vm import Vm

if TYPE_CHECKING:
    from orchestrator.arch import Arch

STATUSES = ("pass", "fail", "skip", "xfail", "timeout", "error")
KINDS = ("module", "selftest")
SELFTEST_PARSERS = ("exit-code", "tap", "uffd-summary")
GUEST_DIR = "/root/kto-selftests"     # where a workload's selftest files go in the guest

# Guest set-up steps: a fixed vocabulary, each implemented by kto (orchestrator/guest/
# kto-selftest). Value: None for a bare step, or the minimum of its integer argument.
SETUP_STEPS: dict[str, int | None] = {
    "drop_caches": None,               # sync; echo 3 > /proc/sys/vm/drop_caches
    "compact_memory": None,            # echo 1 > /proc/sys/vm/compact_memory
    "nr_hugepages": 0,                 # exactly N default-size huge pages
    "hugepages_mb": 1,                 # run_vmtests.sh: max(N MiB, 2 x nproc pages)
    "exactly_one_free_hugepage": None,  # nr_hugepages 1, and skip unless exactly 1 is free
    "shmmax": 1,                       # kernel.shmmax for the test, restored afterwards
    "shmall": 1,                       # kernel.shmall for the test, restored afterwards
    "gigantic_hugepages": 0,           # 1 GiB pages where the CPU has them (best effort)
}
# Values kto substitutes into argv elements (whole-element "{name}" only).
ARGV_VALUES = ("nproc", "half_free_hugetlb_mb", "hugepage_kb")


class SetupStep(schema.Type):
    """``drop_caches`` or ``{nr_hugepages: 128}``: a step name, with its argument if any."""

    def check(self, node, path, lines):
        if isinstance(node, yaml.ScalarNode):
            name = schema.Str().check(node, path, lines)
            if name not in SETUP_STEPS:
                raise schema._Invalid(node, path, f"unknown setup step {name!r} (known: "
                                                  f"{', '.join(SETUP_STEPS)})")
            if SETUP_STEPS[name] is not None:
                raise schema._Invalid(node, path, f"setup step {name!r} needs a value, "
                                                  f"e.g. {{{name}: N}}")
            return (name, None)
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            raise schema._Invalid(node, path, "expected a step name or a one-key mapping "
                                              "{step: value}")
        knode, vnode = node.value[0]
        name = schema._key(knode, path)
        if name not in SETUP_STEPS:
            raise schema._Invalid(knode, path, f"unknown setup step {name!r} (known: "
                                               f"{', '.join(SETUP_STEPS)})")
        if SETUP_STEPS[name] is None:
            raise schema._Invalid(vnode, f"{path}.{name}", f"setup step {name!r} takes no value")
        return (name, schema.Int(minimum=SETUP_STEPS[name]).check(vnode, f"{path}.{name}", lines))


def _arch_names() -> list[str]:
    from orchestrator.arch import ARCHES
    return list(ARCHES)


def _file_name(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", value):
        return f"{value!r} must be a plain file name from tools/testing/selftests/mm"
    return None


def _argv_item(value: str) -> str | None:
    m = re.fullmatch(r"\{(\w+)\}", value)
    if m and m.group(1) not in ARGV_VALUES:
        return f"unknown value {value!r} (known: {', '.join('{%s}' % v for v in ARGV_VALUES)})"
    return None


REQUIRES_SCHEMA = schema.Mapping({
    "kconfig": schema.List(schema.Str()),
    "arches": schema.List(schema.Choice(_arch_names(), "arch")),
    "reason": schema.Str(),
})

TEST_SCHEMA = schema.Mapping({
    "name": schema.Str(),
    "argv": schema.List(schema.Str(_argv_item), nonempty=True),
    "uses": schema.List(schema.Str(_file_name)),
    "timeout": schema.Int(minimum=1),
    "results": schema.Choice(list(SELFTEST_PARSERS), "result parser"),
    # false: run under `setarch -R` (ADDR_NO_RANDOMIZE), for programs that map at fixed
    # hints a randomized heap can take (see userfaultfd.yaml).
    "aslr": schema.Bool(),
    "setup": schema.List(SetupStep()),
    "requires": REQUIRES_SCHEMA,
    "subtests": schema.List(schema.Mapping({
        "match": schema.Str(),
        "requires": REQUIRES_SCHEMA,
    }, required=["match", "requires"])),
}, required=["name", "argv", "timeout"])

WORKLOAD_SCHEMA = schema.Mapping({
    "name": schema.Str(),
    "description": schema.Str(),
    "kind": schema.Choice(list(KINDS), "kind"),
    "module": schema.Str(),
    "requires": REQUIRES_SCHEMA,
    "presets": schema.Dict(schema.List(schema.Str())),
    "preset": schema.Str(),
    "timeout": schema.Int(minimum=1),
    "results": schema.Choice(["vmalloc-summary", "kunit-tap"]),
    "expected_failures": schema.List(schema.Str()),
    "expected_reports": schema.Bool(),
    # kind: selftest
    "setup": schema.List(SetupStep()),
    "before_each": schema.List(SetupStep()),
    "tests": schema.List(TEST_SCHEMA, nonempty=True),
}, required=["name", "kind"])

_KIND_KEYS = {
    "module": {"required": ["module", "presets", "preset", "results"],
               "forbidden": ["setup", "before_each", "tests"]},
    "selftest": {"required": ["tests"], "forbidden": ["module", "results"]},
}


@dataclass
class Requirement:
    kconfig: list[str] = field(default_factory=list)
    arches: list[str] = field(default_factory=list)
    reason: str = ""

    def unmet(self, arch: str, config: dict[str, str]) -> str | None:
        """Why a kernel built with ``config`` for ``arch`` cannot run this; None if it can."""
        why = []
        if self.arches and arch not in self.arches:
            why.append(f"not supported on {arch}")
        missing = [s for s in self.kconfig if config.get(s, "n") == "n"]
        if missing:
            why.append("kernel lacks " + ", ".join(f"CONFIG_{s}" for s in missing))
        if not why:
            return None
        return f"{self.reason} ({'; '.join(why)})" if self.reason else "; ".join(why)


def _requirement(d: dict | None) -> Requirement:
    d = d or {}
    return Requirement(d.get("kconfig", []), d.get("arches", []), d.get("reason", ""))


@dataclass
class SelfTest:
    name: str
    argv: list[str]
    timeout: int
    results: str = "exit-code"
    aslr: bool = True
    setup: list[tuple[str, int | None]] = field(default_factory=list)
    uses: list[str] = field(default_factory=list)
    requires: Requirement = field(default_factory=Requirement)
    subtests: list[tuple[str, Requirement]] = field(default_factory=list)

    def files(self) -> list[str]:
        """Files from the selftests build this test needs in the guest."""
        return [self.argv[0], *self.uses]


@dataclass
class Workload:
    name: str
    path: Path
    kind: str
    module: str = ""
    presets: dict[str, list[str]] = field(default_factory=lambda: {"all": []})
    preset: str = "all"
    results: str = ""
    timeout: int = 900
    description: str = ""
    requires: Requirement = field(default_factory=Requirement)
    expected_failures: list[str] = field(default_factory=list)
    expected_reports: bool = False
    setup: list[tuple[str, int | None]] = field(default_factory=list)
    before_each: list[tuple[str, int | None]] = field(default_factory=list)
    tests: list[SelfTest] = field(default_factory=list)

    @property
    def requires_kconfig(self) -> list[str]:
        return self.requires.kconfig


@dataclass
class WorkloadContext:
    """What a workload run needs to know about the kernel and guest it runs on."""
    arch: "Arch"
    kernel_release: str
    kernel_config: dict[str, str]
    selftests_dir: Path | None = None
    nproc: int = 2
    preset: str | None = None


def workloads_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "workloads"


def available(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or workloads_dir()).glob("*.yaml"))


def load(name: str, directory: Path | None = None) -> Workload:
    path = (directory or workloads_dir()) / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown workload {name!r} (known: {', '.join(available(directory))})")
    return load_file(path)


_LOADED: dict[tuple, Workload] = {}


def load_file(path: Path) -> Workload:
    """The workload in ``path``; a file unchanged since it was last read here comes from
    memory (runs.yaml validation and a run read each workload file many times), as a copy
    the caller may change."""
    try:
        st = path.stat()
    except OSError:
        return _load_file(path)           # _load_file reports it
    memo = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if memo not in _LOADED:
        _LOADED[memo] = _load_file(path)
    return copy.deepcopy(_LOADED[memo])


def _load_file(path: Path) -> Workload:
    data, lines = schema.load_yaml(path, WORKLOAD_SCHEMA)
    if data["name"] != path.stem:
        raise schema.error_at(path, lines, "name",
                              f"{data['name']!r} must match the file name {path.stem!r}")
    kind = data["kind"]
    for key in _KIND_KEYS[kind]["required"]:
        if key not in data:
            raise schema.error_at(path, lines, "kind",
                                  f"a {kind} workload needs the key {key!r}")
    for key in _KIND_KEYS[kind]["forbidden"]:
        if key in data:
            raise schema.error_at(path, lines, key, f"not allowed in a {kind} workload")
    tests = []
    for i, t in enumerate(data.get("tests", [])):
        where = f"tests[{i}]"
        if any(x.name == t["name"] for x in tests):
            raise schema.error_at(path, lines, f"{where}.name",
                                  f"duplicate test name {t['name']!r}")
        err = _file_name(t["argv"][0])
        if err:
            raise schema.error_at(path, lines, f"{where}.argv[0]", err)
        for j, sub in enumerate(t.get("subtests", [])):
            try:
                re.compile(sub["match"])
            except re.error as e:
                raise schema.error_at(path, lines, f"{where}.subtests[{j}].match",
                                      f"invalid regular expression: {e}")
        tests.append(SelfTest(
            name=t["name"], argv=t["argv"], timeout=t["timeout"],
            results=t.get("results", "exit-code"), aslr=t.get("aslr", True),
            setup=t.get("setup", []),
            uses=t.get("uses", []), requires=_requirement(t.get("requires")),
            subtests=[(s["match"], _requirement(s["requires"])) for s in t.get("subtests", [])]))
    presets = data.get("presets", {"all": []})
    preset = data.get("preset", "all")
    if preset not in presets:
        raise schema.error_at(path, lines, "preset", f"{preset!r} is not one of the "
                              f"presets ({', '.join(presets)})")
    if kind == "selftest":
        names = {t.name for t in tests}
        for pname, members in presets.items():
            for j, m in enumerate(members):
                if m not in names:
                    raise schema.error_at(path, lines, f"presets.{pname}",
                                          f"unknown test {m!r} (a selftest preset lists "
                                          "test names; [] means all)")
    return Workload(name=data["name"], path=path, kind=kind, module=data.get("module", ""),
                    presets=presets, preset=preset, results=data.get("results", ""),
                    timeout=data.get("timeout", 900), description=data.get("description", ""),
                    requires=_requirement(data.get("requires")),
                    expected_failures=data.get("expected_failures", []),
                    expected_reports=data.get("expected_reports", False),
                    setup=data.get("setup", []), before_each=data.get("before_each", []),
                    tests=tests)


@dataclass
class TestResult:
    name: str
    status: str           # one of STATUSES
    detail: str = ""


@dataclass
class WorkloadResult:
    workload: str
    # "pass" | "fail" | "skip" | "timeout" | "error", or set by the console watcher
    # (orchestrator/crashwatch.py): "crash" (a fatal report ended the guest) | "stopped"
    # (kto bisect saw the report it looks for)
    status: str
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


# -- selftest result parsers: (test name, output, exit status) -> per-test results --

TIMEOUT_EXIT = 124          # kto-selftest's exit status when it killed a test at its timeout
TIMEOUT_MARK = "kto-selftest: timed out after"
_KSFT_EXIT = {0: ("pass", ""), 1: ("fail", ""), 2: ("xfail", "expected failure (KSFT_XFAIL)"),
              3: ("fail", "unexpectedly passed (KSFT_XPASS)"), 4: ("skip", "")}


def _last_lines(output: str, n: int = 3) -> str:
    lines = [l.strip() for l in output.strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:])


def _exit_result(name: str, output: str, exit_code: int | None) -> TestResult:
    """One result from a kselftest exit status (0 pass, 1 fail, 2 xfail, 3 xpass, 4 skip)."""
    if exit_code is None:
        return TestResult(name, "timeout", "no exit status (guest unresponsive)")
    if exit_code == TIMEOUT_EXIT and TIMEOUT_MARK in output:
        return TestResult(name, "timeout", _last_lines(output, 1))
    if exit_code in _KSFT_EXIT:
        status, detail = _KSFT_EXIT[exit_code]
        if status in ("skip", "fail"):
            detail = "; ".join(filter(None, (detail, _last_lines(output))))
        return TestResult(name, status, detail)
    if exit_code > 128:
        return TestResult(name, "fail", f"killed by signal {exit_code - 128}; "
                                        f"{_last_lines(output)}")
    return TestResult(name, "fail", f"exit status {exit_code}; {_last_lines(output)}")


def parse_exit_code(name: str, output: str, exit_code: int | None) -> list[TestResult]:
    return [_exit_result(name, output, exit_code)]


_KTAP_LINE = re.compile(r"^(not ok|ok) (\d+)(?: (.*?))?\s*(?:#\s*(SKIP|XFAIL|XPASS|TODO)\b:?\s*(.*))?$",
                        re.M | re.I)


def parse_tap(name: str, output: str, exit_code: int | None) -> list[TestResult]:
    """kselftest TAP (ksft_test_result_*): one result per line, named '<test>: <desc>'.
    The exit status still counts: a crash after the last TAP line is a failure."""
    tests: list[TestResult] = []
    seen: set[str] = set()
    for m in _KTAP_LINE.finditer(output):
        ok, num, desc, directive, reason = m.group(1) == "ok", m.group(2), \
            (m.group(3) or "").strip(), (m.group(4) or "").upper(), (m.group(5) or "").strip()
        label = desc or reason or f"#{num}"
        sub = f"{name}: {label}"
        if sub in seen:
            sub = f"{sub} #{num}"
        seen.add(sub)
        if directive == "SKIP":
            status = "skip"
        elif directive == "XFAIL":
            status = "xfail"
        elif directive == "XPASS":
            status = "fail"
            reason = reason or "unexpectedly passed"
        else:
            status = "pass" if ok else "fail"
        tests.append(TestResult(sub, status, reason))
    overall = _exit_result(name, output, exit_code)
    if not tests or (overall.status in ("fail", "timeout", "error") and
                     not any(t.status == overall.status for t in tests)):
        tests.append(overall)
    return tests


_UFFD_START = re.compile(r"Testing ([^\n]*?)\.\.\. ")
_UFFD_OUTCOME = re.compile(r"\b(done)\b|skipped \[reason: (.*?)\]|failed \[reason: (.*?)\]", re.S)
_UFFD_SUMMARY = re.compile(r"Userfaults unit tests: pass=(\d+), skip=(\d+), fail=(\d+)")


def parse_uffd_summary(name: str, output: str, exit_code: int | None) -> list[TestResult]:
    """uffd-unit-tests: 'Testing <test> on <memory>... done|skipped [reason: R]|failed
    [reason: R]' per test, then 'Userfaults unit tests: pass=N, skip=N, fail=N'."""
    tests: list[TestResult] = []
    starts = list(_UFFD_START.finditer(output))
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(output)
        seg = output[m.end():end]
        o = _UFFD_OUTCOME.search(seg)
        sub = f"{name}: {m.group(1)}"
        if o is None:
            tests.append(TestResult(sub, "fail" if k + 1 < len(starts) else "error",
                                    "no outcome printed: " + (_last_lines(seg, 2) or "nothing")))
        elif o.group(1):
            tests.append(TestResult(sub, "pass"))
        elif o.group(2) is not None:
            tests.append(TestResult(sub, "skip", o.group(2).strip()))
        else:
            tests.append(TestResult(sub, "fail", o.group(3).strip()))
    summary = _UFFD_SUMMARY.search(output)
    overall = _exit_result(name, output, exit_code)
    if summary is None:
        if overall.status == "pass":
            overall = TestResult(name, "error", "exit status 0 but no summary line")
        if overall.status == "skip" and not tests:
            return [overall]
        if tests and tests[-1].status == "error" and overall.status in ("timeout", "fail"):
            tests[-1].status = overall.status
            tests[-1].detail = f"{overall.detail}; {tests[-1].detail}"
        else:
            tests.append(TestResult(name, overall.status if overall.status != "skip" else
                                    "error", "no summary line; " + overall.detail))
        return tests
    counts = {s: sum(1 for t in tests if t.status == s) for s in ("pass", "skip", "fail")}
    want = dict(zip(("pass", "skip", "fail"), map(int, summary.groups())))
    if counts != want:
        tests.append(TestResult(name, "error", f"summary says {want}, parsed {counts}"))
    elif overall.status not in ("pass", "fail"):
        tests.append(overall)     # e.g. killed after the summary
    return tests


_LOG_START = re.compile(r"^=== kto: (\S+): .* \(timeout \d+s\)$", re.M)
_LOG_END = re.compile(r"^=== kto: (\S+): exit (\S+) after [\d.]+s$", re.M)


def split_log(text: str) -> list[tuple[str, str, int | None]]:
    """A selftest workload's saved output (workloads/<name>.txt) back into
    (test name, test output, exit status) - to re-read results from a saved run."""
    out = []
    for m in _LOG_START.finditer(text):
        end = _LOG_END.search(text, m.end())
        if end is None or end.group(1) != m.group(1):
            continue
        code = None if end.group(2) == "None" else int(end.group(2))
        out.append((m.group(1), text[m.end() + 1:end.start()], code))
    return out


SELFTEST_PARSER_FUNCS = {"exit-code": parse_exit_code, "tap": parse_tap,
                         "uffd-summary": parse_uffd_summary}


def apply_subtest_requirements(tests: list[TestResult], test: SelfTest, arch: str,
                               config: dict[str, str]) -> None:
    """Sub-tests the kernel cannot support (from its config) are skips with a reason,
    whatever the binary reported for them."""
    for pattern, req in test.subtests:
        why = req.unmet(arch, config)
        if not why:
            continue
        rx = re.compile(pattern)
        for t in tests:
            label = t.name.split(": ", 1)[-1]
            if t.name != test.name and rx.search(label):
                was = "" if t.status == "skip" else f" (binary reported {t.status})"
                t.status, t.detail = "skip", why + was


# -- runner --

def run(vm: Vm, wl: Workload, ctx: WorkloadContext) -> WorkloadResult:
    if wl.kind == "selftest":
        return _run_selftests(vm, wl, ctx)
    return _run_module(vm, wl, ctx)


def _kmsg_mark(vm: Vm, wl: Workload) -> str:
    mark = f"kto-workload-{wl.name}-{int(time.time() * 1000)}"
    vm.run(["sh", "-c", 'echo "$1" > /dev/kmsg', "sh", mark], timeout=60)
    return mark


def _run_module(vm: Vm, wl: Workload, ctx: WorkloadContext) -> WorkloadResult:
    t0 = time.monotonic()
    params = [p.replace("$NPROC", str(ctx.nproc)) for p in wl.presets[ctx.preset or wl.preset]]
    mark = _kmsg_mark(vm, wl)
    find = vm.run(["find", f"/lib/modules/{ctx.kernel_release}", "-name", f"{wl.module}.ko"],
                  timeout=60)
    ko = find.stdout.strip().splitlines()[:1]
    if not ko:
        return WorkloadResult(wl.name, "error", [], time.monotonic() - t0,
                              f"{wl.module}.ko not in /lib/modules/{ctx.kernel_release}")
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


class _GuestGone(Exception):
    pass


class _Guest:
    """The guest side of a selftest workload: kto-selftest subcommands over SSH."""

    def __init__(self, vm: Vm, log: list[str]):
        self.vm, self.log = vm, log
        self.runner = f"{GUEST_DIR}/kto-selftest"

    def call(self, *args: str | int, timeout: float = 120) -> str:
        res = self.vm.run([self.runner, *map(str, args)], timeout=timeout)
        if res.exit_code is None:
            raise _GuestGone(f"kto-selftest {' '.join(map(str, args))}: "
                             f"{'timed out' if res.timed_out else 'guest died'}")
        out = (res.stdout + res.stderr).strip()
        self.log.append(f"# kto-selftest {' '.join(map(str, args))}: {out or 'ok'}"
                        + (f" (exit {res.exit_code})" if res.exit_code else ""))
        return res.stdout.strip()

    def state(self) -> dict[str, int]:
        out = self.call("state")
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out)}


def _setup(guest: _Guest, steps, ctx: WorkloadContext, restore: list) -> str | None:
    """Run set-up steps; remember how to undo the ones that change tunables.
    Returns a reason to skip the test, or None."""
    for name, value in steps:
        if name in ("drop_caches", "compact_memory"):
            guest.call(name)
        elif name == "nr_hugepages":
            guest.call("nr_hugepages", value)
        elif name == "hugepages_mb":
            hp_kb = guest.state().get("hugepagesize_kb", 0)
            if not hp_kb:
                return "the kernel reports no default huge page size"
            pages = max(value * 1024, 2 * ctx.nproc * hp_kb) // hp_kb
            guest.call("nr_hugepages", pages)
            free = guest.state().get("free", 0)
            if free < pages:
                guest.log.append(f"# only {free} of {pages} huge pages could be allocated")
        elif name == "exactly_one_free_hugepage":
            guest.call("nr_hugepages", 1)
            st = guest.state()
            if st.get("free") != 1:
                return (f"needs exactly one free huge page, the guest has "
                        f"{st.get('free')} of {st.get('nr_hugepages')}")
        elif name in ("shmmax", "shmall"):
            old = guest.call("sysctl", f"kernel/{name}", value).splitlines()
            if old and old[0].isdigit():
                restore.append(("sysctl", f"kernel/{name}", old[0]))
        elif name == "gigantic_hugepages":
            got = guest.call("gigantic", value)
            if got != "none":
                restore.append(("gigantic", 0))
        else:   # the schema only admits SETUP_STEPS
            raise ValueError(f"setup step {name!r} has no implementation")
    return None


def _argv(test: SelfTest, guest: _Guest, ctx: WorkloadContext) -> list[str]:
    values: dict[str, str] = {"nproc": str(ctx.nproc)}
    if any(a in ("{half_free_hugetlb_mb}", "{hugepage_kb}") for a in test.argv):
        st = guest.state()
        values["hugepage_kb"] = str(st.get("hugepagesize_kb", 0))
        values["half_free_hugetlb_mb"] = str(st.get("free", 0) * st.get("hugepagesize_kb", 0)
                                             // 1024 // 2)
    out = [f"./{test.argv[0]}"]      # from the selftests directory, never $PATH
    for a in test.argv[1:]:
        m = re.fullmatch(r"\{(\w+)\}", a)
        out.append(values[m.group(1)] if m else a)
    # kto-selftest runs it under busybox's `linux64 -R` (setarch -R).
    return out if test.aslr else ["linux64", "-R", *out]


def selected_tests(wl: Workload, preset: str | None) -> list[SelfTest]:
    names = wl.presets.get(preset or wl.preset, [])
    return [t for t in wl.tests if not names or t.name in names]


def _run_selftests(vm: Vm, wl: Workload, ctx: WorkloadContext) -> WorkloadResult:
    t0 = time.monotonic()
    arch = ctx.arch.name
    results: list[TestResult] = []
    log: list[str] = []
    tests = selected_tests(wl, ctx.preset)
    if ctx.selftests_dir is None:
        return WorkloadResult(wl.name, "error", [], 0.0, "selftests were not built")
    # Decide skips from the kernel's config before touching the guest.
    todo = []
    for t in tests:
        why = t.requires.unmet(arch, ctx.kernel_config)
        if why:
            results.append(TestResult(t.name, "skip", why))
        else:
            todo.append(t)
    guest = _Guest(vm, log)
    _kmsg_mark(vm, wl)      # where this workload starts, in the console log
    status, reason = "pass", ""
    try:
        vm.run(["mkdir", "-p", GUEST_DIR, f"{GUEST_DIR}/compat"], timeout=60)
        for f in ("kto-selftest", "compat/pgrep", "compat/killall"):
            vm.put(ctx.selftests_dir / f, f"{GUEST_DIR}/{f}", 0o755)
        uploaded = set()
        for t in todo:
            for f in t.files():
                local = ctx.selftests_dir / f
                if f not in uploaded and local.exists():
                    vm.put(local, f"{GUEST_DIR}/{f}", 0o755)
                    uploaded.add(f)
        original = guest.state()
        _setup(guest, wl.setup, ctx, [])
        deadline = t0 + wl.timeout
        for k, t in enumerate(todo):
            missing = [f for f in t.files() if not (ctx.selftests_dir / f).exists()]
            if missing:
                why = (ctx.selftests_dir / "build-errors" / f"{missing[0]}.txt")
                detail = _last_lines(why.read_text(), 2) if why.exists() else ""
                results.append(TestResult(t.name, "error", f"{', '.join(missing)} did not "
                                          f"build from this tree: {detail}"))
                continue
            if time.monotonic() + 10 > deadline:
                for rest in todo[k:]:
                    results.append(TestResult(rest.name, "error", f"not run: the workload's "
                                              f"{wl.timeout}s budget is used up"))
                status, reason = "timeout", f"workload budget of {wl.timeout}s used up"
                break
            restore: list = []
            skip = _setup(guest, [*wl.before_each, *t.setup], ctx, restore)
            if skip:
                results.append(TestResult(t.name, "skip", skip))
                log.append(f"=== {t.name}: skipped: {skip}")
                continue
            argv = _argv(t, guest, ctx)
            limit = min(t.timeout, max(1, int(deadline - time.monotonic())))
            log.append(f"=== kto: {t.name}: {' '.join(argv)} (timeout {limit}s)")
            started = time.monotonic()
            res = vm.run([guest.runner, "run", str(limit), GUEST_DIR, *argv],
                         timeout=limit + 60)
            output = res.stdout + res.stderr
            if res.exit_code is None and vm.alive():
                # Host deadline first (the guest's clock can lag under TCG): kill the test
                # from a new session; a guest that answers goes on with the next test.
                kill = vm.run([guest.runner, "kill"], timeout=60)
                if kill.exit_code is not None:
                    output += f"\n{TIMEOUT_MARK} {limit + 60}s (host clock): killed ./{t.argv[0]}\n"
                    res = dataclasses.replace(res, exit_code=TIMEOUT_EXIT)
            log.append(output.rstrip("\n"))
            log.append(f"=== kto: {t.name}: exit {res.exit_code} after "
                       f"{time.monotonic() - started:.1f}s")
            parsed = SELFTEST_PARSER_FUNCS[t.results](t.name, output, res.exit_code)
            apply_subtest_requirements(parsed, t, arch, ctx.kernel_config)
            results.extend(parsed)
            if res.exit_code is None:
                # The guest did not come back from the test: nothing more can run in it.
                for rest in todo[k + 1:]:
                    results.append(TestResult(rest.name, "error", f"not run: the guest hung "
                                              f"in {t.name}"))
                status, reason = "timeout", f"{t.name} hung the guest (no answer after " \
                                            f"{limit + 60}s)"
                break
            for r in restore:
                guest.call(*r)
        else:
            # Give the huge pages back so later workloads have the memory.
            guest.call("nr_hugepages", original.get("nr_hugepages", 0))
    except _GuestGone as e:
        status, reason = "error", str(e)
    except KtoError as e:
        status, reason = "error", str(e)
    if status == "pass":
        if any(r.status == "timeout" for r in results):
            status = "timeout"    # a killed test may leave the kernel wedged: reboot next
            reason = "a test was killed at its timeout"
        elif any(r.status in ("fail", "error") for r in results):
            status = "fail"
    order = {t.name: i for i, t in enumerate(tests)}
    results.sort(key=lambda r: order.get(r.name.split(": ", 1)[0], len(order)))
    return WorkloadResult(wl.name, status, results, time.monotonic() - t0, reason,
                          "\n".join(log) + "\n")
