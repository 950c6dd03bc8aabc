"""runs.yaml, schema v1: named runs, each a kernel source, arches, kconfig fragments, an
optional patch series, workloads and timeouts. Every problem is one line naming the file,
the line and the key."""
from __future__ import annotations

import re

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import schema, workload
from orchestrator.build import KCONFIG_BASES
from orchestrator.errors import ConfigError
from orchestrator.source import DEFAULT_TARBALL, SourceSpec

SCHEMA_VERSION = 1

_SOURCE = schema.Mapping({"tarball": schema.Str(), "git": schema.Str(), "ref": schema.Str()})
_TIMEOUTS = schema.Mapping({"build": schema.Int(minimum=1), "boot": schema.Int(minimum=1),
                            "workload": schema.Int(minimum=1)})
_VM = schema.Mapping({"memory_mb": schema.Int(minimum=256), "cpus": schema.Int(minimum=1),
                      "accel": schema.Choice(["auto", "tcg", "kvm"], "accel")})


def _plain_name(v: str) -> str | None:
    # Becomes a path component (results/<run>-<time>, build-dirs/<arch>-<dir>): no '/',
    # no leading '.' (so not '..' either), nothing a shell or a URL would need quoted.
    return None if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", v) else \
        f"{v!r} must be a plain directory name (letters, digits, '_', '-', '.'; no leading '.')"


# Parameters kto itself puts on every guest's command line (orchestrator/vm.py): a run may
# not override them (the console is how kto reads the guest; panic=-1 ends a dead guest).
KTO_OWNED_PARAMS = ("console", "earlycon", "rdinit", "init", "panic", "printk.devkmsg",
                    "log_buf_len")


def _kernel_param(v: str) -> str | None:
    """One kernel parameter: ``name`` or ``name=value``, no spaces or quotes (each list
    item is one parameter, appended to the guest's command line as is)."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(=[A-Za-z0-9_.,:/+@-]*)?", v):
        return (f"{v!r} is not a kernel parameter (name or name=value; letters, digits "
                "and _.,:/+@- only, one parameter per list item)")
    if v.split("=", 1)[0] in KTO_OWNED_PARAMS:
        return f"{v!r}: kto sets {v.split('=', 1)[0]}= itself"
    return None


def _run_schema() -> schema.Mapping:
    return schema.Mapping({
        "description": schema.Str(),
        "source": _SOURCE,
        "arches": schema.List(schema.Choice(list(arch_mod.ARCHES), "arch"), nonempty=True),
        "kconfig": schema.Mapping({
            "base": schema.Choice(list(KCONFIG_BASES), "kconfig base"),
            "fragments": schema.List(schema.Str()),
            "build_dir": schema.Str(_plain_name),
            # Matrix: named variants, each the run's fragments plus its own (one job each).
            "variants": schema.Dict(schema.Mapping({
                "fragments": schema.List(schema.Str()),
                "build_dir": schema.Str(_plain_name),
                # Boot options this variant's kernel needs, after the run's own.
                "cmdline": schema.List(schema.Str(_kernel_param)),
                # Only some of the run's arches (e.g. KCSAN: x86_64, arm64 in 6.12).
                "arches": schema.List(schema.Choice(list(arch_mod.ARCHES), "arch"),
                                      nonempty=True),
            }, required=["fragments"]), nonempty=True),
        }),
        "patches": schema.Optional(schema.Str()),
        # Matrix: the stock kernel plus one job per series (instead of `patches`).
        "series": schema.List(schema.Str(), nonempty=True),
        "workloads": schema.List(schema.Choice(workload.available(), "workload")),
        "presets": schema.Dict(schema.Str()),
        "timeouts": _TIMEOUTS,
        "vm": _VM,
        # Kernel parameters appended to every guest's command line of this run.
        "cmdline": schema.List(schema.Str(_kernel_param)),
    }, required=["arches"])


def _file_schema() -> schema.Mapping:
    return schema.Mapping({"version": schema.Int(),
                           "runs": schema.Dict(_run_schema(), nonempty=True, key=_plain_name)},
                          required=["version", "runs"])


@dataclass
class Timeouts:
    build: int = 3600
    boot: int = 300
    workload: int = 900


@dataclass
class VmSettings:
    memory_mb: int = 2048
    cpus: int = 2
    accel: str = "auto"


@dataclass
class Variant:
    """A kconfig variant of a run: extra fragments after the run's own, and the
    persistent build directory it builds in (default: the variant's name)."""
    name: str
    fragments: list[Path]
    build_dir: str
    cmdline: list[str] = field(default_factory=list)   # after the run's own
    arches: list[str] = field(default_factory=list)    # [] = all of the run's


@dataclass
class RunConfig:
    name: str
    source: SourceSpec
    arches: list[str]
    fragments: list[Path]          # shared fragments; the arch fragment is added per arch
    kconfig_base: str = "tinyconfig"
    # Persistent build directory (per arch) the run builds in. Configs that differ in
    # options touching most objects get their own, so switching does not rebuild all.
    build_dir: str = "main"
    patches: Path | None = None
    workloads: list[str] = field(default_factory=list)
    presets: dict[str, str] = field(default_factory=dict)   # workload -> preset
    timeouts: Timeouts = field(default_factory=Timeouts)
    vm: VmSettings = field(default_factory=VmSettings)
    description: str = ""
    file: Path | None = None
    # Matrix (orchestrator/plan.py): kconfig variants and series, each one more job per arch.
    variants: list[Variant] = field(default_factory=list)
    series: list[Path] = field(default_factory=list)
    source_arg: str = ""    # --source PATH[@REV] that replaced `source` (for reproducers)
    # Kernel parameters kto appends to the guest's command line (boot options that a
    # kconfig needs to take effect, e.g. debug_pagealloc=on). Not part of the build key:
    # runs that differ only here share one kernel.
    cmdline: list[str] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path | None:
        """The runs file's directory (kconfigs/ and patches/ are beside the file)."""
        return self.file.resolve().parent if self.file is not None else None

    def fragments_for(self, arch: str) -> list[Path]:
        """Shared fragments with the arch's own fragment after base (later ones win), and
        after any fragment ``F.config`` its arch-only part ``F.<arch>.config`` if there is
        one (options only some arches have, e.g. the hugetlb vmemmap optimisation)."""
        own = self.fragments[0].parent / arch_mod.get(arch).kconfig if self.fragments else None
        frags = []
        for f in self.fragments:
            frags.append(f)
            part = f.with_name(f"{f.stem}.{arch}.config")
            if part.is_file() and part not in self.fragments:
                frags.append(part)
        if own is not None:
            frags.insert(1, own)
        return frags


DEFAULT_FRAGMENTS = ["base.config", "kasan.config", "lockdep.config", "mm-workloads.config"]


def load(path: Path) -> dict[str, RunConfig]:
    path = Path(path)
    data, lines = schema.load_yaml(path, _file_schema())
    if data["version"] != SCHEMA_VERSION:
        raise schema.error_at(path, lines, "version",
                              f"unsupported schema version {data['version']} "
                              f"(this kto reads version {SCHEMA_VERSION})")
    top = path.resolve().parent
    runs = {}
    for name, r in data["runs"].items():
        key = f"runs.{name}"
        runs[name] = _run(name, r, path, top, lines, key)
    return runs


def _inside(root: Path, rel: str, what: str, path, lines, key, file: bool = False) -> Path:
    """``root/rel``, which must exist and stay inside ``root`` (no absolute path, no '..',
    no symlink out): runs.yaml names fragments and series, it does not reach elsewhere."""
    p = root / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise schema.error_at(path, lines, key, f"{what} {rel!r} must be a path inside "
                              f"{root.name}/ (no absolute path, no '..')")
    if not (p.is_file() if file else p.exists()):
        raise schema.error_at(path, lines, key, f"no such {what} {p}")
    try:
        p.resolve().relative_to(root.resolve())
    except ValueError:
        raise schema.error_at(path, lines, key, f"{what} {rel!r} leads outside {root.name}/ "
                              f"(to {p.resolve()})") from None
    return p


def _check_source(spec: SourceSpec, path, lines, key) -> None:
    """The tarball exists, or the git tree does and has the ref: found by kto plan, not
    after minutes of a run."""
    from orchestrator.proc import git
    if spec.git is None:
        if not spec.tarball.is_file():
            raise schema.error_at(path, lines, key, f"kernel source tarball {spec.tarball} not "
                                  "found (the default one: scripts/setup-system.sh)")
        return
    k = f"{key}.git" if f"{key}.git" in lines else key
    if not spec.git.exists():
        raise schema.error_at(path, lines, k, f"{spec.git} does not exist")
    if not ((spec.git / ".git").exists() or (spec.git / "HEAD").exists()):
        raise schema.error_at(path, lines, k, f"{spec.git} is not a git repository")
    ref = spec.ref or "HEAD"
    if ref.startswith("-") or not git(spec.git, "rev-parse", "-q", "--verify",
                                      f"{ref}^{{commit}}", check=False):
        raise schema.error_at(path, lines, f"{key}.ref" if spec.ref else k,
                              f"unknown ref {ref!r} in {spec.git}")


def _run(name, r, path, top, lines, key) -> RunConfig:
    src = r.get("source", {})
    if "tarball" in src and "git" in src:
        raise schema.error_at(path, lines, f"{key}.source", "give either tarball or git, not both")
    if "ref" in src and "git" not in src:
        raise schema.error_at(path, lines, f"{key}.source.ref", "ref needs a git source")
    spec = SourceSpec(tarball=(top / src.get("tarball", DEFAULT_TARBALL)) if "git" not in src
                      else None,
                      git=(top / src["git"]) if "git" in src else None, ref=src.get("ref"))
    _check_source(spec, path, lines, key if "source" not in r else f"{key}.source")

    kc = r.get("kconfig", {})
    names = kc.get("fragments", DEFAULT_FRAGMENTS)
    fragments = []
    for i, frag in enumerate(names):
        fragments.append(_inside(top / "kconfigs", frag, "fragment", path, lines,
                                 f"{key}.kconfig.fragments[{i}]", file=True))
    for a in r["arches"]:
        own = top / "kconfigs" / arch_mod.get(a).kconfig
        if not own.is_file():
            raise schema.error_at(path, lines, f"{key}.arches", f"missing arch fragment {own}")

    patches = None
    if r.get("patches"):
        patches = _inside(top / "patches", r["patches"], "series", path, lines, f"{key}.patches")

    if r.get("patches") and r.get("series"):
        raise schema.error_at(path, lines, f"{key}.series",
                              "give either patches (every job) or series (one job each), not both")
    series = []
    for i, rel in enumerate(r.get("series", [])):
        series.append(_inside(top / "patches", rel, "series", path, lines, f"{key}.series[{i}]"))

    variants = []
    for vname, v in kc.get("variants", {}).items():
        vkey = f"{key}.kconfig.variants.{vname}"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", vname):
            raise schema.error_at(path, lines, vkey, f"variant name {vname!r} may only have "
                                  "letters, digits, '_' and '-' (it is part of job ids)")
        vfrags = []
        for i, frag in enumerate(v["fragments"]):
            vfrags.append(_inside(top / "kconfigs", frag, "fragment", path, lines,
                                  f"{vkey}.fragments[{i}]", file=True))
        for i, a in enumerate(v.get("arches", [])):
            if a not in r["arches"]:
                raise schema.error_at(path, lines, f"{vkey}.arches[{i}]",
                                      f"{a!r} is not one of the run's arches "
                                      f"({', '.join(r['arches'])})")
        variants.append(Variant(vname, vfrags, v.get("build_dir", vname),
                                v.get("cmdline", []), v.get("arches", [])))

    workloads = r.get("workloads", [])
    presets = r.get("presets", {})
    for wl_name, preset in presets.items():
        if wl_name not in workloads:
            raise schema.error_at(path, lines, f"{key}.presets.{wl_name}",
                                  f"workload {wl_name!r} is not in this run's workloads")
        wl = workload.load(wl_name)
        if preset not in wl.presets:
            raise schema.error_at(path, lines, f"{key}.presets.{wl_name}",
                                  f"unknown preset {preset!r} (known: {', '.join(wl.presets)})")
    for wl_name in workloads:
        workload.load(wl_name)    # validates the workload file itself

    return RunConfig(
        name=name, source=spec, arches=r["arches"], fragments=fragments,
        kconfig_base=kc.get("base", "tinyconfig"), build_dir=kc.get("build_dir", "main"),
        patches=patches, workloads=workloads,
        presets=presets, timeouts=Timeouts(**r.get("timeouts", {})),
        vm=VmSettings(**r.get("vm", {})), description=r.get("description", ""), file=path,
        variants=variants, series=series, cmdline=r.get("cmdline", []))


# -- where runs.yaml is: kto is used from a developer's kernel tree, not only its checkout --

RUNS_ENV = "KTO_RUNS"
RUNS_NAME = "runs.yaml"


def project_dir() -> Path:
    """kto's own checkout: runs.yaml, kconfigs/, workloads/ and patches/ live here."""
    return Path(__file__).resolve().parent.parent


def find_runs(explicit: Path | None = None) -> Path:
    """The runs file to use: --runs FILE, else $KTO_RUNS, else ./runs.yaml, else the
    project's own runs.yaml. Its kconfigs/ and patches/ are the ones beside it."""
    import os
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env)
    for candidate in (Path(RUNS_NAME), project_dir() / RUNS_NAME):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no {RUNS_NAME}: none in the current directory, {RUNS_ENV} is not set "
                      f"and kto's own checkout has none (give --runs FILE)")


def find_and_load(explicit: Path | None = None) -> tuple[Path, dict[str, RunConfig]]:
    path = find_runs(explicit)
    return path, load(path)
