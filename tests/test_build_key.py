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
