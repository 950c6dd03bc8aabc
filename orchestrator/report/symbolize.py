"""Fill Frame.source (file:line) and inline frames with binutils.

Addresses are symbol address (from ``nm``) + frame offset, so the kernel's KASLR offset does
not matter.  All addresses of one binary go to a single ``addr2line -f -i`` call.  Module
frames are resolved against ``<modules_dir>/**/<module>.ko``; only .text symbols are used, as
section-relative addresses in the unlinked .ko (good enough for the usual case).

File names are shown relative to the kernel source root: kto builds out of tree with ccache's
base_dir, so DWARF names look like ``../../trees/x86_64/mm/vmalloc.c`` or
``/root/.cache/kto/trees/x86_64/mm/vmalloc.c``; both become ``mm/vmalloc.c``.

``symbolize_build`` does the same from a kto build store directory (vmlinux, System.map,
modules/*.ko, metadata.json with the arch) and never raises.
"""
from __future__ import annotations

import json
import os
import re
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


# The first "trees/<slot>/" path component pair and everything before it.
_TREES_PREFIX = re.compile(r"^(?:.*?/)?trees/[^/]+/")


def source_path(path: str, source_root: str | None = None) -> str:
    """``path`` relative to the kernel source root.

    With ``source_root``, a path under it (as given or resolved) is made relative to it.
    Otherwise, or if it is not under it, everything up to and including a ``trees/<slot>/``
    component is dropped (kto's per-slot worktrees).  Other paths are returned unchanged.
    """
    if source_root:
        roots = {source_root.rstrip("/"), os.path.realpath(source_root)}
        for root in sorted(roots, key=len, reverse=True):
            for p in (os.path.normpath(path), path):
                if p.startswith(root + "/") and len(p) > len(root) + 1:
                    return p[len(root) + 1:]
    return _TREES_PREFIX.sub("", path, count=1)


def _clean_loc(loc: str, source_root: str | None = None) -> str | None:
    if not loc or loc.startswith("??"):
        return None
    path, sep, line = loc.rpartition(":")
    if not sep or not path:
        return source_path(loc, source_root)
    return f"{source_path(path, source_root)}:{line}"


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


def _expand(frame: Frame, chain: list[tuple[str, str]], source_root: str | None = None) -> list[Frame]:
    """Inline chain (innermost first) -> inline frames followed by the real frame."""
    if not chain:
        return [frame]
    out = []
    for func, loc in chain[:-1]:
        out.append(Frame(func=func, inline=True, source=_clean_loc(loc, source_root), module=frame.module))
    out.append(replace(frame, source=_clean_loc(chain[-1][1], source_root) or frame.source))
    return out


class _Modules:
    """``<module>.ko`` lookup under a directory, indexed on first use."""

    def __init__(self, modules_dir: Path | None):
        self.dir = Path(modules_dir) if modules_dir else None
        self._index: dict[str, Path] | None = None

    def find(self, module: str) -> Path | None:
        if self.dir is None:
            return None
        if self._index is None:
            self._index = {}
            for p in sorted(self.dir.rglob("*.ko")):
                self._index.setdefault(p.name, p)
        return self._index.get(f"{module}.ko") or self._index.get(f"{module.replace('_', '-')}.ko")


def symbolize(reports: list[Report], vmlinux: Path, modules_dir: Path | None = None,
              tool_prefix: str = "", source_root: str | None = None) -> list[Report]:
    """Symbolize every report's frames in place (also returned for convenience).

    Source paths are made relative to ``source_root`` when given, and a ``.../trees/<slot>/``
    prefix is always dropped (see source_path).
    """
    vmlinux = Path(vmlinux)
    if not vmlinux.is_file():
        raise KtoError(f"symbolize: no such vmlinux: {vmlinux}")
    mods = _Modules(modules_dir)
    by_bin: dict[Path, list[Frame]] = {}
    for r in reports:
        for f in r.frames:
            if f.inline or f.offset is None:
                continue
            if f.module:
                ko = mods.find(f.module)
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
                binary = vmlinux if not f.module else mods.find(f.module)
            if binary is None or binary not in results:
                new.append(f)
                continue
            syms, table = results[binary]
            a = frame_address(f, syms)
            new.extend(_expand(f, table.get(a, []), source_root) if a is not None else [f])
        r.frames = new
    return reports


def build_inputs(build_dir: Path) -> tuple[Path, Path | None, str]:
    """(vmlinux, modules dir or None, binutils prefix) of a kto build store directory.

    The prefix comes from ``metadata.json``'s arch: '' on a native host, else the Debian
    cross prefix.  Raises KtoError naming what is missing.
    """
    from orchestrator import arch as arches

    build_dir = Path(build_dir)
    if not build_dir.is_dir():
        raise KtoError(f"symbolize: no such build directory: {build_dir}")
    vmlinux = build_dir / "vmlinux"
    if not vmlinux.is_file():
        raise KtoError(f"symbolize: no vmlinux in build directory {build_dir}")
    meta_path = build_dir / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise KtoError(f"symbolize: no metadata.json in build directory {build_dir}") from None
    except (OSError, ValueError) as e:
        raise KtoError(f"symbolize: cannot read {meta_path}: {e}") from None
    name = meta.get("arch") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise KtoError(f"symbolize: {meta_path} has no arch")
    try:
        prefix = arches.get(name).cross_prefix()
    except KtoError as e:
        raise KtoError(f"symbolize: {meta_path}: {e}") from None
    mods = build_dir / "modules"
    return vmlinux, (mods if mods.is_dir() else None), prefix


def symbolize_build(reports: list[Report], build_dir: Path,
                    source_root: str | None = None) -> tuple[list[Report], str | None]:
    """Symbolize ``reports`` with the vmlinux and modules of a kto build store directory.

    Returns (reports, None) on success.  Never raises for a missing or broken build
    directory, binutils or binary: the reports come back unsymbolized with a one-line
    warning instead.
    """
    if not any(r.frames for r in reports):
        return reports, None
    saved = [r.frames for r in reports]
    try:
        vmlinux, modules_dir, prefix = build_inputs(Path(build_dir))
        symbolize(reports, vmlinux, modules_dir, prefix, source_root)
    except Exception as e:  # noqa: BLE001 - the pipeline must go on without symbols
        for r, frames in zip(reports, saved):
            r.frames = frames
        msg = str(e) if isinstance(e, KtoError) else f"{type(e).__name__}: {e}"
        if not msg.startswith("symbolize:"):
            msg = f"symbolize: {msg}"
        return reports, f"{msg.splitlines()[0] if msg else 'symbolize failed'} (reports left unsymbolized)"
    return reports, None
