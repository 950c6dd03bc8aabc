"""Race detection (issue 16): runs.yaml's per-run and per-variant kernel command line and
variant arches, arch-only fragment parts, the race run's jobs, the mm-race workload files,
and kto's race programs run natively on the host as plain Linux programs."""
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from orchestrator import arch, config, plan, selftests, vm, workload
from orchestrator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
RACE = REPO / "orchestrator" / "guest" / "race"
DEBUG_CMDLINE = ["page_table_check=on", "debug_pagealloc=on", "page_owner=on", "init_on_free=1"]


@pytest.fixture
def project(tmp_path, repo_root):
    shutil.copytree(repo_root / "kconfigs", tmp_path / "kconfigs")
    return tmp_path


RUNS = """\
version: 1
runs:
  r:
    arches: [x86_64, arm64, riscv64]
    cmdline: [loglevel=7]
    kconfig:
      fragments: [base.config, kasan.config, debug-vm.config]
      variants:
        dv: {fragments: [], cmdline: [debug_pagealloc=on]}
        kc: {fragments: [kcsan.config], arches: [x86_64, arm64]}
    workloads: [vmalloc]
"""


def load(project, text=RUNS):
    p = project / "runs.yaml"
    p.write_text(textwrap.dedent(text))
    return config.load(p)


def test_cmdline_run_then_variant_and_variant_arches(project):
    jobs = {j.id: j for j in plan.expand(load(project)["r"])}
    assert sorted(jobs) == ["arm64", "arm64.dv", "arm64.kc", "riscv64", "riscv64.dv",
                            "x86_64", "x86_64.dv", "x86_64.kc"]
    assert jobs["x86_64"].cmdline == ("loglevel=7",)
    assert jobs["riscv64.dv"].cmdline == ("loglevel=7", "debug_pagealloc=on")
    cfg = jobs["x86_64.dv"].config(load(project)["r"])
    assert cfg.cmdline == ["loglevel=7", "debug_pagealloc=on"]
    spec = vm.VmSpec(arch.get("x86_64"), Path("k"), Path("i"), cmdline_extra=cfg.cmdline)
    assert spec.cmdline().endswith(" loglevel=7 debug_pagealloc=on")
    assert "panic=-1" in spec.cmdline()


@pytest.mark.parametrize("param, msg", [
    ("'a b'", "is not a kernel parameter"),
    ("'x=\"1\"'", "is not a kernel parameter"),
    ("'--'", "is not a kernel parameter"),
    ("panic=0", "kto sets panic= itself"),
    ("console=ttyS1", "kto sets console= itself"),
    ("rdinit=/bin/sh", "kto sets rdinit= itself"),
    ("1", "expected a string"),
])
def test_bad_cmdline_is_a_one_line_error_with_file_and_line(project, param, msg):
    with pytest.raises(ConfigError, match=r"runs.yaml:5: runs.r.cmdline\[0\]: .*" + msg):
        load(project, RUNS.replace("[loglevel=7]", f"[{param}]"))
    bad = RUNS.replace("cmdline: [debug_pagealloc=on]", f"cmdline: [{param}]")
    with pytest.raises(ConfigError, match=r"runs.yaml:9: runs.r.kconfig.variants.dv.cmdline"):
        load(project, bad)


def test_variant_arch_must_be_one_of_the_runs(project):
    bad = RUNS.replace("arches: [x86_64, arm64, riscv64]", "arches: [x86_64, riscv64]")
    with pytest.raises(ConfigError, match=r"runs.yaml:10: runs.r.kconfig.variants.kc."
                                          r"arches\[1\]: 'arm64' is not one of the run's"):
        load(project, bad)


def test_arch_part_of_a_fragment_follows_it_on_that_arch_only(project):
    cfg = load(project)["r"]
    names = lambda a: [f.name for f in cfg.fragments_for(a)]
    assert names("x86_64") == ["base.config", "x86_64.config", "kasan.config",
                               "debug-vm.config", "debug-vm.x86_64.config"]
    assert names("arm64") == ["base.config", "arm64.config", "kasan.config", "debug-vm.config"]


def test_repo_race_run(repo_root):
    runs = config.load(repo_root / "runs.yaml")
    jobs = {j.id: j for j in plan.expand(runs["race"])}
    assert sorted(jobs) == ["arm64", "arm64.debug-vm", "arm64.kcsan", "riscv64",
                            "riscv64.debug-vm", "x86_64", "x86_64.debug-vm", "x86_64.kcsan"]
    assert list(jobs["x86_64.debug-vm"].cmdline) == DEBUG_CMDLINE
    assert jobs["x86_64.kcsan"].cmdline == () and jobs["x86_64"].build_dir == "main"
    # The example runs boot the very kernel of race's x86_64.debug-vm job.
    for name in ("race-vma", "race-hugetlb"):
        r = runs[name]
        assert r.cmdline == DEBUG_CMDLINE and r.build_dir == "debug-vm"
        assert r.fragments_for("x86_64") == jobs["x86_64.debug-vm"].config(
            runs["race"]).fragments_for("x86_64")
    # The stock job is the default run's kernel (same fragments, same build dir).
    assert list(jobs["x86_64"].fragments) == runs["default"].fragments


def test_kcsan_fragment_undoes_kasan():
    from orchestrator import kconfig
    frags = [kconfig.parse_fragment(REPO / "kconfigs" / f)
             for f in ("kasan.config", "kcsan.config")]
    merged = kconfig.merge(frags)
    assert merged["KCSAN"].value == "y"
    assert all(merged[s].value == "n" for s in ("KASAN", "KASAN_GENERIC", "KASAN_INLINE",
                                                 "KASAN_VMALLOC"))


def test_mm_race_workload_files():
    wl = workload.load("mm-race")
    assert wl.kind == "selftest"
    for t in wl.tests:
        assert selftests.race_source(t.argv[0]) is not None, t.name
        assert "-s" in t.argv and "-t" in t.argv     # duration and threads from the file
    assert selftests.wanted_files(["mm-race"]) == ["kto-race-anon", "kto-race-hugetlb",
                                                    "kto-race-vma"]
    v = workload.load("vmalloc-race")
    assert v.kind == "module" and all("nr_threads=$NPROC" in p for p in v.presets.values())


def test_race_programs_compile_from_kto_not_the_tree(tmp_path):
    tc = type("TC", (), {"gcc": "gcc"})()
    argv = selftests.compile_argv(tmp_path, tc, "kto-race-vma", tmp_path / "out")
    assert str(RACE / "kto-race-vma.c") in argv
    assert not any("tools/testing/selftests/mm" in a for a in argv)


def test_race_sources_key_only_the_selftest_builds_that_include_them(tmp_path, monkeypatch):
    """An edit to a race program changes the key of a selftest build that includes the race
    programs, not of one that does not, nor any kernel build key."""
    from orchestrator import build, selftests
    from orchestrator.toolchain import Toolchain
    guest = tmp_path / "guest"
    shutil.copytree(RACE.parent, guest)
    monkeypatch.setattr(selftests.resources, "files", lambda pkg: guest)
    a, tc = arch.get("x86_64"), Toolchain("", "gcc", "gcc (Debian 12.2.0-14) 12.2.0")
    race_files = selftests.wanted_files(["mm-race"])
    plain = selftests.wanted_files(["hugetlb", "userfaultfd"])
    assert not any(selftests.race_source(f) for f in plain)
    kin = build.BuildInput(arch=a, toolchain=tc, tree=Path("t"), commit="c" * 40,
                           tree_id="t" * 40, base_commit="c" * 40, patches=[],
                           fragments=[REPO / "kconfigs" / "base.config"])

    def keys():
        return (selftests.cache_key("t" * 40, a, tc, race_files),
                selftests.cache_key("t" * 40, a, tc, plain),
                build.build_key(kin, "CONFIG_A=y\n"))
    before = keys()
    src = guest / "race" / "kto-race-anon.c"
    src.write_text(src.read_text() + "/* edited */\n")
    after = keys()
    assert after[0] != before[0]
    assert after[1:] == before[1:]
    (guest / "race" / "race.h").write_text("/* edited */\n")     # a shared header too
    assert keys()[0] != after[0] and keys()[1:] == before[1:]


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """The race programs built for the host exactly as kto builds them for a guest."""
    out = tmp_path_factory.mktemp("race")
    for src in RACE.glob("*.c"):
        subprocess.run(["gcc", *selftests.CFLAGS, "-Werror", "-o", str(out / src.stem),
                        str(src), *selftests.LIBS], check=True)
    return out


@pytest.mark.parametrize("program, counters", [
    ("kto-race-vma", ["touches", "segv", "munmap", "mmap_anon", "mmap_shared", "mremap",
                      "mprotect", "dontneed"]),
    ("kto-race-anon", ["forks", "pageout", "cold", "move_pages", "smaps", "mincore",
                       "dontneed"]),
])
def test_race_program_runs_natively(native, program, counters):
    """Plain Linux programs: on the host they run for the given time, every operation
    happens, and they exit 0 (no -g: nothing system-wide is touched)."""
    cp = subprocess.run([str(native / program), "-s", "2", "-t", "2"], capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    line = cp.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{program}: 2 s, 2 thread(s) per role:")
    got = dict(kv.split("=") for kv in line.split(":", 2)[2].split())
    for name in counters:
        if name == "move_pages" and int(got[name]) == 0:
            continue      # a host without NUMA
        assert int(got[name]) > 0, (name, line)


def test_hugetlb_race_program_skips_without_a_pool_or_runs(native):
    """Never touches the host's pool: with none it must say skip (4); with one, run."""
    cp = subprocess.run([str(native / "kto-race-hugetlb"), "-s", "2", "-t", "1"],
                        capture_output=True, text=True, timeout=60)
    free = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                    if l.startswith("HugePages_Free:")))
    if free < 4:
        assert cp.returncode == 4 and "SKIP: the huge page pool" in cp.stdout, cp.stdout
    else:
        assert cp.returncode == 0, cp.stdout
        assert cp.stdout.count("vm_readv=") == 2


@pytest.mark.parametrize("args", [["-s", "0"], ["-t", "x"], ["extra"], ["-z"]])
def test_race_program_rejects_bad_options(native, args):
    cp = subprocess.run([str(native / "kto-race-vma"), *args], capture_output=True, text=True)
    assert cp.returncode == 2 and "usage:" in cp.stderr
