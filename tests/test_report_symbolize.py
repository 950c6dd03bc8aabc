"""symbolize(): address arithmetic and addr2line parsing on a small ELF built with host gcc."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator import arch as arches
from orchestrator.errors import KtoError
from orchestrator.report import Frame, Report, parse
from orchestrator.report.symbolize import (
    _clean_loc, build_inputs, frame_address, parse_addr2line, parse_nm, source_path, symbolize,
    symbolize_build,
)

SRC = """\
static inline __attribute__((always_inline)) int helper(int x)
{
	volatile int y = x * 3;
	return y + 1;
}

__attribute__((noinline)) int foo(int x)
{
	int r = 0;
	for (int i = 0; i < x; i++)
		r += helper(i);
	return r;
}

int main(int argc, char **argv)
{
	return foo(argc);
}
"""

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "nm", "addr2line", "objdump")), reason="needs gcc/binutils"
)


def test_parse_nm_and_address():
    syms = parse_nm("ffffffff81000000 T _stext\nffffffff81234560 t foo\nffffffff81234560 t foo\n"
                    "ffffffff82000000 D data\n         U undef\n")
    assert syms == {"_stext": 0xffffffff81000000, "foo": 0xffffffff81234560}
    # return addresses point past the call: resolve offset - 1
    assert frame_address(Frame("foo", 0x10, 0x40), syms) == 0xffffffff8123456f
    assert frame_address(Frame("foo", 0, 0x40), syms) == 0xffffffff81234560
    assert frame_address(Frame("nosuch", 0x10, 0x40), syms) is None
    assert frame_address(Frame("", addr=0x1234), syms) is None


def test_parse_addr2line_inline_chains():
    out = ("0x0000000000401117\nhelper\n/tmp/t.c:3\nfoo\n/tmp/t.c:11\n"
           "0x0000000000401106\nfoo\n/tmp/t.c:10 (discriminator 2)\n0x0000000000000001\n??\n??:0\n")
    assert parse_addr2line(out, 3) == [
        [("helper", "/tmp/t.c:3"), ("foo", "/tmp/t.c:11")],
        [("foo", "/tmp/t.c:10")],
        [("??", "??:0")],
    ]


def _disasm(binary: Path, func: str) -> list[int]:
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    body = out.split(f"<{func}>:\n", 1)[1].split("\n\n", 1)[0]
    return [int(ln.split(":")[0], 16) for ln in body.splitlines() if ":" in ln]


@needs_tools
def test_symbolize_small_elf(tmp_path):
    src = tmp_path / "t.c"
    src.write_text(SRC)
    binary = tmp_path / "vmlinux.elf"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(binary), str(src)], check=True)
    foo = parse_nm(subprocess.run(["nm", str(binary)], capture_output=True, text=True).stdout)["foo"]
    insns = _disasm(binary, "foo")
    # Pick the instruction after the inlined helper's volatile store: its "return address"
    # (insn + 1 -> offset - 1 lands on the store) sits inside helper() inlined into foo().
    lines = {}
    for a in insns:
        res = subprocess.run(["addr2line", "-i", "-e", str(binary), hex(a)], capture_output=True, text=True).stdout
        lines[a] = res.split()
    inline_pc = next(a for a, loc in lines.items() if len(loc) == 2 and loc[0].endswith("t.c:3"))
    off = inline_pc - foo + 1
    rep = Report(title="WARNING in foo", type="WARNING", frame="foo",
                 frames=[Frame("foo", off, 0x40), Frame("main", 0x5, 0x20), Frame("unknown_fn", 1, 2),
                         Frame("", addr=0xffffffff81000000)])
    symbolize([rep], binary)
    funcs = [(f.func, f.inline, f.source) for f in rep.frames]
    assert funcs[0][0] == "helper" and funcs[0][1] is True and funcs[0][2].endswith("t.c:3")
    assert funcs[1][0] == "foo" and funcs[1][1] is False and funcs[1][2].endswith("t.c:11")
    assert funcs[2][0] == "main" and funcs[2][2] is not None and str(src) in funcs[2][2]
    assert funcs[3] == ("unknown_fn", False, None)  # not in the symbol table: left alone
    assert rep.frames[-1].func == "" and rep.frames[-1].source is None


@needs_tools
def test_symbolize_module_frame(tmp_path):
    src = tmp_path / "mod.c"
    src.write_text("int modfn(int x) { return x * 7 + 1; }\n")
    mods = tmp_path / "lib" / "modules"
    mods.mkdir(parents=True)
    ko = mods / "kto_test.ko"
    subprocess.run(["gcc", "-g", "-O1", "-c", "-o", str(ko), str(src)], check=True)
    vmlinux = tmp_path / "vmlinux"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(vmlinux), "-x", "c", "-"], input="int main(void){return 0;}\n",
                   text=True, check=True)
    rep = Report(title="t", type="BUG", frame=None, frames=[Frame("modfn", 0x1, 0x10, module="kto_test")])
    symbolize([rep], vmlinux, mods)
    assert rep.frames[0].source is not None and rep.frames[0].source.startswith(str(src))


def test_symbolize_missing_vmlinux(tmp_path):
    with pytest.raises(KtoError):
        symbolize([], tmp_path / "nope")


# --- source paths relative to the kernel tree ---------------------------------------------

@pytest.mark.parametrize("path,root,want", [
    ("../../trees/x86_64/mm/vmalloc.c", None, "mm/vmalloc.c"),
    ("/root/.cache/kto/trees/x86_64/mm/vmalloc.c", None, "mm/vmalloc.c"),
    ("/root/.cache/kto/build-dirs/x86_64-default/../../trees/arm64-kasan/mm/vmalloc.c", None,
     "mm/vmalloc.c"),
    ("trees/riscv64/include/linux/mm.h", None, "include/linux/mm.h"),
    ("mm/vmalloc.c", None, "mm/vmalloc.c"),
    ("/usr/include/stdio.h", None, "/usr/include/stdio.h"),
    ("/src/subtrees/x86_64/mm/a.c", None, "/src/subtrees/x86_64/mm/a.c"),  # not a trees/ component
    ("/src/trees/a.c", None, "/src/trees/a.c"),  # no slot directory
    ("/src/linux/mm/a.c", "/src/linux", "mm/a.c"),
    ("/src/linux/mm/a.c", "/src/linux/", "mm/a.c"),
    ("/src/linux/./mm/../mm/a.c", "/src/linux", "mm/a.c"),
    ("../../linux/mm/a.c", "../../linux", "mm/a.c"),
    ("/src/linux2/mm/a.c", "/src/linux", "/src/linux2/mm/a.c"),
    ("/other/trees/x86_64/mm/a.c", "/src/linux", "mm/a.c"),  # not under the root: default rule
])
def test_source_path(path, root, want):
    assert source_path(path, root) == want


def test_clean_loc_keeps_line_and_drops_unknown():
    assert _clean_loc("../../trees/x86_64/mm/vmalloc.c:123") == "mm/vmalloc.c:123"
    assert _clean_loc("/k/linux/mm/vmalloc.c:7", "/k/linux") == "mm/vmalloc.c:7"
    assert _clean_loc("??:0") is None and _clean_loc("??:?") is None and _clean_loc("") is None


def _native_arch() -> str | None:
    return next((a.name for a in arches.ARCHES.values() if a.cross_prefix() == ""), None)


def _fake_build(tmp_path: Path, arch: str | None = None) -> Path:
    """A kto build store directory built from a small gcc -g ELF compiled out of tree, so its
    DWARF file names look like kto's: <cache>/build-dirs/<slot>/../../trees/<slot>/mm/t.c."""
    cache = tmp_path / "cache"
    src = cache / "trees" / "x86_64-default" / "mm" / "t.c"
    src.parent.mkdir(parents=True)
    src.write_text(SRC)
    (cache / "trees" / "x86_64-default" / "mm" / "mod.c").write_text(
        "int modfn(int x) { return x * 7 + 1; }\n")
    bdir = cache / "build-dirs" / "x86_64-default"
    bdir.mkdir(parents=True)
    subprocess.run(["gcc", "-g", "-O1", "-o", "vmlinux", "../../trees/x86_64-default/mm/t.c"],
                   cwd=bdir, check=True)
    subprocess.run(["gcc", "-g", "-O1", "-c", "-o", "kto_test.ko", "../../trees/x86_64-default/mm/mod.c"],
                   cwd=bdir, check=True)
    store = tmp_path / "store" / "abc123"
    (store / "modules").mkdir(parents=True)
    shutil.copy(bdir / "vmlinux", store / "vmlinux")
    shutil.copy(bdir / "kto_test.ko", store / "modules" / "kto_test.ko")
    nm = subprocess.run(["nm", "-n", str(store / "vmlinux")], capture_output=True, text=True, check=True)
    (store / "System.map").write_text(nm.stdout)
    (store / "config").write_text("CONFIG_DEBUG_INFO=y\n")
    (store / "metadata.json").write_text(json.dumps({"key": "abc123", "arch": arch or _native_arch()}))
    return store


def _inline_offset(binary: Path) -> int:
    """Offset in foo() whose call site (offset - 1) is inside the inlined helper()."""
    foo = parse_nm(subprocess.run(["nm", str(binary)], capture_output=True, text=True).stdout)["foo"]
    for a in _disasm(binary, "foo"):
        loc = subprocess.run(["addr2line", "-i", "-e", str(binary), hex(a)], capture_output=True,
                             text=True).stdout.split()
        if len(loc) == 2 and loc[0].endswith("t.c:3"):
            return a - foo + 1
    raise AssertionError("no inlined helper() instruction in foo()")


def _warning_log(off: int) -> str:
    return "\n".join([
        "[   10.000000] ------------[ cut here ]------------",
        f"[   10.000001] WARNING: CPU: 0 PID: 1 at mm/t.c:11 foo+0x{off:x}/0x40",
        "[   10.000002] Modules linked in: kto_test",
        "[   10.000003] CPU: 0 PID: 1 Comm: swapper Not tainted 6.6.0 #1",
        f"[   10.000004] RIP: 0010:foo+0x{off:x}/0x40",
        "[   10.000005] Call Trace:",
        "[   10.000006]  <TASK>",
        f"[   10.000007]  foo+0x{off:x}/0x40",
        "[   10.000007]  modfn+0x1/0x10 [kto_test]",
        "[   10.000008]  main+0x5/0x20",
        "[   10.000009]  nosuch_fn+0x5/0x20",
        "[   10.000010]  </TASK>",
        "[   10.000011] ---[ end trace 0000000000000000 ]---",
        "",
    ])


needs_native = pytest.mark.skipif(_native_arch() is None, reason="host arch unknown to kto")


@needs_tools
@needs_native
def test_symbolize_paths_relative_to_tree(tmp_path):
    store = _fake_build(tmp_path)
    off = _inline_offset(store / "vmlinux")
    rep = Report(title="t", type="WARNING", frame="foo",
                 frames=[Frame("foo", off, 0x40), Frame("modfn", 0x1, 0x10, module="kto_test")])
    symbolize([rep], store / "vmlinux", store / "modules")
    assert [(f.func, f.inline, f.source) for f in rep.frames] == [
        ("helper", True, "mm/t.c:3"), ("foo", False, "mm/t.c:11"), ("modfn", False, "mm/mod.c:1")]
    # An explicit source root works for trees outside kto's cache too.
    rep = Report(title="t", type="WARNING", frame="foo", frames=[Frame("main", 0x5, 0x20)])
    symbolize([rep], store / "vmlinux", source_root=str(tmp_path / "cache" / "trees"))
    assert rep.frames[0].source.startswith("x86_64-default/mm/t.c:")


@needs_tools
@needs_native
def test_symbolize_build(tmp_path):
    store = _fake_build(tmp_path)
    off = _inline_offset(store / "vmlinux")
    reports = parse(_warning_log(off))
    assert len(reports) == 1 and [f.func for f in reports[0].frames][:3] == ["foo", "modfn", "main"]
    out, warning = symbolize_build(reports, store)
    assert warning is None and out is reports
    assert [(f.func, f.inline) for f in reports[0].frames][:3] == [("helper", True), ("foo", False),
                                                                  ("modfn", False)]
    srcs = {f.func: f.source for f in reports[0].frames}
    assert srcs["helper"] == "mm/t.c:3" and srcs["foo"] == "mm/t.c:11"
    assert srcs["modfn"] == "mm/mod.c:1" and srcs["main"].startswith("mm/t.c:")
    assert srcs["nosuch_fn"] is None


def _frames_of(reports):
    return [list(r.frames) for r in reports]


@pytest.mark.parametrize("breakage", ["no dir", "no vmlinux", "no metadata", "bad json", "no arch",
                                      "unknown arch", "no tools"])
def test_symbolize_build_never_raises(tmp_path, monkeypatch, breakage):
    store = tmp_path / "store"
    store.mkdir()
    (store / "vmlinux").write_bytes(b"\x7fELF not really")
    (store / "System.map").write_text("0000000000001000 T main\n")
    meta = {"arch": _native_arch() or "x86_64"}
    if breakage == "no dir":
        store = tmp_path / "nope"
    elif breakage == "no vmlinux":
        (store / "vmlinux").unlink()
    elif breakage == "bad json":
        (store / "metadata.json").write_text("{")
    elif breakage == "no arch":
        (store / "metadata.json").write_text("{}")
    elif breakage == "unknown arch":
        meta["arch"] = "vax"
    elif breakage == "no tools":
        empty = tmp_path / "bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
    if breakage in ("unknown arch", "no tools"):
        (store / "metadata.json").write_text(json.dumps(meta))
    reports = [Report(title="t", type="BUG", frame="main", frames=[Frame("main", 0x5, 0x20)])]
    before = _frames_of(reports)
    out, warning = symbolize_build(reports, store)
    assert out is reports and _frames_of(reports) == before
    assert warning and warning.startswith("symbolize: ") and "\n" not in warning
    assert "unsymbolized" in warning


def test_symbolize_build_without_frames_needs_nothing(tmp_path):
    reports = [Report(title="t", type="BUG", frame=None)]
    assert symbolize_build(reports, tmp_path / "nope") == (reports, None)


def test_build_inputs_cross_prefix(tmp_path, monkeypatch):
    store = tmp_path / "store"
    (store / "modules").mkdir(parents=True)
    (store / "vmlinux").write_bytes(b"")
    (store / "metadata.json").write_text(json.dumps({"arch": "arm64"}))
    monkeypatch.setattr(arches.platform, "machine", lambda: "x86_64")
    vmlinux, mods, prefix = build_inputs(store)
    assert (vmlinux, mods, prefix) == (store / "vmlinux", store / "modules", "aarch64-linux-gnu-")
    monkeypatch.setattr(arches.platform, "machine", lambda: "aarch64")
    assert build_inputs(store)[2] == ""
    (store / "modules").rmdir()
    assert build_inputs(store)[1] is None
    with pytest.raises(KtoError, match="no metadata.json"):
        (store / "metadata.json").unlink()
        build_inputs(store)
