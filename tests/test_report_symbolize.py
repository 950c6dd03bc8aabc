"""symbolize(): address arithmetic and addr2line parsing on a small ELF built with host gcc."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import KtoError
from orchestrator.report import Frame, Report
from orchestrator.report.symbolize import frame_address, parse_addr2line, parse_nm, symbolize

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
