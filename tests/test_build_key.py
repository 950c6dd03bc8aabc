"""Build keys: the same inputs give the same key; any input that changes the kernel
changes the key."""
from dataclasses import replace
from pathlib import Path

from orchestrator import arch, build
from orchestrator.toolchain import Toolchain

CONFIG = "# header 1\nCONFIG_A=y\nCONFIG_KASAN=y\n"


def inp(**kw):
    base = build.BuildInput(
        arch=arch.get("x86_64"), toolchain=Toolchain("", "gcc", "gcc (Debian 12.2.0-14) 12.2.0"),
        tree=Path("/t"), commit="c" * 40, tree_id="t" * 40, base_commit="b" * 40, patches=[],
        fragments=[Path("kconfigs/base.config")])
    return replace(base, **kw)


def test_key_is_stable_and_ignores_config_comments():
    assert build.build_key(inp(), CONFIG) == build.build_key(inp(), "# other\n" + CONFIG)
    # Where the tree is checked out and the commit metadata do not change the kernel.
    assert build.build_key(inp(), CONFIG) == build.build_key(inp(tree=Path("/x"),
                                                                 commit="d" * 40), CONFIG)


def test_key_changes_with_every_input():
    k = build.build_key(inp(), CONFIG)
    variants = [
        build.build_key(inp(tree_id="u" * 40), CONFIG),
        build.build_key(inp(patches=["p1"]), CONFIG),
        build.build_key(inp(), CONFIG.replace("KASAN=y", "KASAN=n")),
        build.build_key(inp(toolchain=Toolchain("", "gcc", "gcc 13")), CONFIG),
        build.build_key(inp(arch=arch.get("arm64")), CONFIG),
    ]
    assert len({k, *variants}) == 1 + len(variants)


def test_first_errors_picks_compiler_errors():
    log = ("  CC      mm/vmalloc.o\n"
           "../mm/vmalloc.c:12:3: error: 'foo' undeclared (first use in this function)\n"
           "make[4]: *** [../scripts/Makefile.build:229: mm/vmalloc.o] Error 1\n"
           "  CC      mm/other.o\n")
    out = build.first_errors(log)
    assert out.splitlines()[0].startswith("../mm/vmalloc.c:12:3: error:")
    assert "CC      mm/other.o" not in out


def test_metadata_names_fragments_relative_to_the_runs_file_and_the_key_ignores_paths(
        tmp_path, monkeypatch):
    """metadata.json (copied into results as build-metadata.json) holds no absolute path of
    this machine for a fragment: relative to the runs file's directory when it lies under
    it, else its name. Where the fragments lie changes neither key."""
    import shutil

    from orchestrator import config, kconfig
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    repo = Path(__file__).resolve().parent.parent
    cfg = config.load(repo / "runs.yaml")["default"]
    assert cfg.runs_dir == repo
    outside = tmp_path / "extra.config"
    outside.write_text("CONFIG_A=y\n")
    frags = [*cfg.fragments_for("x86_64"), outside]
    assert all(f.is_absolute() for f in frags)
    made = inp(fragments=frags, runs_dir=cfg.runs_dir)

    def failed_make(argv, env, log_path, progress, est):
        log_path.write_text("error: stop here\n")    # no make: the metadata is all we want
        return 2, 0
    monkeypatch.setattr(build, "_run_make", failed_make)
    r = build._build_locked(made, CONFIG, "k" * 20, tmp_path / "final", 0.0, lambda m: None, 1)
    assert r.status == "failed"
    assert r.metadata["fragments"] == [f"kconfigs/{f.name}" for f in frags[:-1]] + [
        "extra.config"]
    assert r.metadata["fragments"][:2] == ["kconfigs/base.config", "kconfigs/x86_64.config"]
    assert build.fragment_names(frags[:1], None) == ["base.config"]

    # The same fragments elsewhere (another checkout): the same keys.
    copy = tmp_path / "elsewhere"
    shutil.copytree(repo / "kconfigs", copy / "kconfigs")
    moved = inp(fragments=[copy / "kconfigs" / f.name for f in frags[:-1]] + [outside],
                runs_dir=copy)
    assert build.build_key(made, CONFIG) == build.build_key(moved, CONFIG)

    def requested(i):
        return kconfig.merge([kconfig.parse_fragment(p) for p in i.fragments])
    assert build._kconfig_result(made, requested(made)) == \
        build._kconfig_result(moved, requested(moved))
