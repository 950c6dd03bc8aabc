"""Fill Frame.source (file:line) and inline frames with binutils.

Addresses are symbol address (from ``nm``) + frame offset, so the kernel's KASLR offset does
not matter.  All addresses of one binary go to a single ``addr2line -f -i`` call.  Module
frames are resolved against ``<modules_dir>/**/<module>.ko``; only .text symbols are used, as
section-relative addresses in the unlinked .ko (good enough for the usual case).
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.report.frames import Frame
from orchestrator.report.parser import Report


def _run(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise KtoError(f"symbolize: {cmd[0]} not found (install binutils or pass --tool-prefix)")
    if res.returncode != 0:
        raise KtoError(f"symbolize: {' '.join(cmd[:3])} failed: {res.stderr.strip()[:200]}")
    return res.stdout


def parse_nm(text: str, text_only: bool = False) -> dict[str, int]:
    """``nm`` output -> {symbol: address}; first definition wins (local duplicates exist)."""
    syms: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        addr, kind, name = parts[0], parts[1], parts[2]
        if kind not in "tTwW" or (text_only and kind not in "tT"):
            continue
        try:
            a = int(addr, 16)
        except ValueError:
            continue
        syms.setdefault(name, a)
    return syms


def symbol_table(binary: Path, tool_prefix: str = "") -> dict[str, int]:
    # A System.map next to vmlinux has the same format as nm output and saves a run.
    smap = binary.with_name("System.map")
    if binary.name == "vmlinux" and smap.is_file():
        return parse_nm(smap.read_text(errors="replace"))
    return parse_nm(_run([f"{tool_prefix}nm", "--defined-only", str(binary)]))


def frame_address(frame: Frame, syms: dict[str, int]) -> int | None:
    """Address inside the function: symbol + offset.

    The return address points after the call instruction; step back one byte for frames other
    than the faulting one so the line is the call site, as syzkaller does (offset - 1 when > 0).
    """
    if not frame.func or frame.offset is None:
        return None
    base = syms.get(frame.func)
    if base is None:
        return None
    off = frame.offset - 1 if frame.offset > 0 else 0
    return base + off


def parse_addr2line(text: str, n: int) -> list[list[tuple[str, str]]]:
    """``addr2line -f -i -a`` output -> per address: [(func, "file:line"), ...] innermost first.

    With ``-a`` every address starts with a "0x..." line, which lets us split inline chains.
    """
    out: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if ln.startswith("0x") and all(ch in "0123456789abcdefx" for ch in ln):
            cur = []
            out.append(cur)
            i += 1
            continue
        if cur is not None and i + 1 < len(lines):
            func, loc = ln, lines[i + 1].strip()
            loc = loc.split(" (discriminator")[0]
            cur.append((func, loc))
            i += 2
            continue
        i += 1
    while len(out) < n:
        out.append([])
    return out[:n]


def _clean_loc(loc: str) -> str | None:
    if not loc or loc.startswith("??"):
        return None
    return loc


def _resolve(binary: Path, frames: list[Frame], syms: dict[str, int], tool_prefix: str) -> dict[int, list[tuple[str, str]]]:
    addrs: list[int] = []
    for f in frames:
        a = frame_address(f, syms)
        if a is not None:
            addrs.append(a)
    uniq = sorted(set(addrs))
    if not uniq:
        return {}
    cmd = [f"{tool_prefix}addr2line", "-f", "-i", "-a", "-e", str(binary)] + [hex(a) for a in uniq]
    res = parse_addr2line(_run(cmd), len(uniq))
    return dict(zip(uniq, res))


def _expand(frame: Frame, chain: list[tuple[str, str]]) -> list[Frame]:
    """Inline chain (innermost first) -> inline frames followed by the real frame."""
    if not chain:
        return [frame]
    out = []
    for func, loc in chain[:-1]:
        out.append(Frame(func=func, inline=True, source=_clean_loc(loc), module=frame.module))
    out.append(replace(frame, source=_clean_loc(chain[-1][1]) or frame.source))
    return out


def _find_ko(modules_dir: Path, module: str) -> Path | None:
    names = {f"{module}.ko", f"{module.replace('_', '-')}.ko"}
    for p in modules_dir.rglob("*.ko"):
        if p.name in names:
            return p
    return None


def symbolize(reports: list[Report], vmlinux: Path, modules_dir: Path | None = None,
              tool_prefix: str = "") -> list[Report]:
    """Symbolize every report's frames in place (also returned for convenience)."""
    vmlinux = Path(vmlinux)
    if not vmlinux.is_file():
        raise KtoError(f"symbolize: no such vmlinux: {vmlinux}")
    by_bin: dict[Path, list[Frame]] = {}
    for r in reports:
        for f in r.frames:
            if f.inline or f.offset is None:
                continue
            if f.module:
                ko = _find_ko(Path(modules_dir), f.module) if modules_dir else None
                if ko is None:
                    continue
                by_bin.setdefault(ko, []).append(f)
            else:
                by_bin.setdefault(vmlinux, []).append(f)
    results: dict[Path, tuple[dict[str, int], dict[int, list]]] = {}
    for binary, frames in by_bin.items():
        syms = symbol_table(binary, tool_prefix)
        if binary != vmlinux:
            syms = parse_nm(_run([f"{tool_prefix}nm", "--defined-only", str(binary)]), text_only=True)
        results[binary] = (syms, _resolve(binary, frames, syms, tool_prefix))
    for r in reports:
        new: list[Frame] = []
        for f in r.frames:
            binary = None
            if not f.inline and f.offset is not None:
                binary = vmlinux if not f.module else (
                    _find_ko(Path(modules_dir), f.module) if modules_dir else None)
            if binary is None or binary not in results:
                new.append(f)
                continue
            syms, table = results[binary]
            a = frame_address(f, syms)
            new.extend(_expand(f, table.get(a, [])) if a is not None else [f])
        r.frames = new
    return reports
