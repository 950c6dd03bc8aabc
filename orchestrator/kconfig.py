"""Kconfig: merge fragments from kconfigs/ onto a base config, run olddefconfig, and verify
that every option a fragment asked for survived (naming the unmet dependency if not)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ConfigError
from orchestrator.schema import read_text

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


@dataclass
class Fragment:
    path: Path
    options: dict[str, str]            # symbol (no CONFIG_ prefix) -> value; "n" when unset
    lines: dict[str, int] = field(default_factory=dict)  # symbol -> 1-based line


@dataclass(frozen=True)
class Requested:
    symbol: str
    value: str
    origin: str        # "kconfigs/kasan.config:5"


def parse_fragment(path: Path) -> Fragment:
    text = read_text(path, "kconfig fragment")
    frag = Fragment(path=path, options={})
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            value = m.group(2).strip() if m.re is _SET else "n"
            if not value:
                raise ConfigError(f"{path}:{n}: CONFIG_{m.group(1)} has no value")
            frag.options[m.group(1)] = value
            frag.lines[m.group(1)] = n
        elif line and not line.startswith("#"):
            raise ConfigError(f"{path}:{n}: not a Kconfig assignment: {line!r}")
    return frag


def merge(fragments: list[Fragment]) -> dict[str, Requested]:
    """Later fragments override earlier ones, like scripts/kconfig/merge_config.sh."""
    merged: dict[str, Requested] = {}
    for frag in fragments:
        for sym, value in frag.options.items():
            merged[sym] = Requested(sym, value, f"{frag.path}:{frag.lines[sym]}")
    return merged


def render(requested: dict[str, Requested]) -> str:
    out = []
    for r in requested.values():
        out.append(f"# CONFIG_{r.symbol} is not set" if r.value == "n"
                   else f"CONFIG_{r.symbol}={r.value}")
    return "\n".join(out) + "\n"


def read_config(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        m = _SET.match(line) or _UNSET.match(line)
        if m:
            values[m.group(1)] = m.group(2) if m.re is _SET else "n"
    return values


def config_hash(text: str) -> str:
    """Hash of a .config's assignments, ignoring comments (the header embeds a version)."""
    body = "\n".join(sorted(l for l in text.splitlines() if l.startswith("CONFIG_")))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Problem:
    requested: Requested
    actual: str                  # value in the final config ("n" if absent)
    reason: str                  # unmet dependency, or why Kconfig cannot set it

    def __str__(self) -> str:
        r = self.requested
        want = "not set" if r.value == "n" else r.value
        got = "not set" if self.actual == "n" else self.actual
        return (f"{r.origin}: CONFIG_{r.symbol}={want} did not survive olddefconfig "
                f"(final: {got}){': ' + self.reason if self.reason else ''}")


def _same(want: str, got: str) -> bool:
    return want == got or want.strip('"') == got.strip('"')


def verify(requested: dict[str, Requested], final: dict[str, str],
           index: "KconfigIndex | None" = None) -> list[Problem]:
    problems = []
    for r in requested.values():
        actual = final.get(r.symbol, "n")
        if not _same(r.value, actual):
            reason = index.explain(r.symbol, r.value, final) if index else ""
            problems.append(Problem(r, actual, reason))
    return problems


# --- Why an option did not stick: a small reader of the Kconfig language. ---

@dataclass
class SymbolDef:
    file: str
    depends: list[str] = field(default_factory=list)   # 'depends on' + enclosing 'if'
    has_prompt: bool = False
    selected_by: list[str] = field(default_factory=list)


class KconfigIndex:
    """Definitions of every Kconfig symbol for one arch: where, depends on, prompt."""

    def __init__(self, tree: Path, src_arch: str):
        self.defs: dict[str, list[SymbolDef]] = {}
        self.selects: dict[str, list[str]] = {}
        for path in sorted(tree.rglob("Kconfig*")):
            rel = path.relative_to(tree)
            if rel.parts[0] == "arch" and len(rel.parts) > 1 and rel.parts[1] != src_arch:
                continue
            if rel.parts[0] in ("Documentation", "tools", "scripts") or not path.is_file():
                continue
            self._read(path, str(rel))

    def _read(self, path: Path, rel: str) -> None:
        ifs: list[str] = []
        cur: SymbolDef | None = None
        cur_sym = ""
        for raw in path.read_text(errors="replace").splitlines():
            line = raw.split("#", 1)[0].rstrip() if '"' not in raw else raw.rstrip()
            s = line.strip()
            if not s:
                continue
            word = s.split(None, 1)
            head, rest = word[0], (word[1] if len(word) > 1 else "")
            if head in ("config", "menuconfig"):
                cur_sym = rest.strip()
                cur = SymbolDef(file=rel, depends=list(ifs))
                self.defs.setdefault(cur_sym, []).append(cur)
            elif head in ("if",):
                ifs.append(rest.strip())
                cur = None
            elif head == "endif":
                if ifs:
                    ifs.pop()
                cur = None
            elif head in ("menu", "endmenu", "choice", "endchoice", "comment", "source",
                          "mainmenu"):
                cur = None
            elif cur is not None:
                if s.startswith("depends on"):
                    cur.depends.append(s[len("depends on"):].strip())
                elif head in ("bool", "tristate", "string", "int", "hex", "prompt") and \
                        '"' in rest:
                    cur.has_prompt = True
                elif head in ("select", "imply"):
                    target = rest.split()[0] if rest.split() else ""
                    self.selects.setdefault(target, []).append(cur_sym)

    def explain(self, symbol: str, want: str, final: dict[str, str]) -> str:
        defs = self.defs.get(symbol)
        if not defs:
            return f"no Kconfig symbol {symbol} for this arch"
        if want == "n":
            sel = [s for s in self.selects.get(symbol, []) if final.get(s, "n") != "n"]
            return f"selected by {', '.join(sel)}" if sel else ""
        unmet = []
        for d in defs:
            for expr in d.depends:
                for term in _conjuncts(expr):
                    if _eval(term, final) == 0 or (want == "y" and _eval(term, final) == 1):
                        unmet.append(term)
        if unmet:
            shown = [f"{t} ({_describe(t, final)})" for t in dict.fromkeys(unmet)]
            return "unmet dependency " + ", ".join(shown)
        if not any(d.has_prompt for d in defs):
            sel = self.selects.get(symbol, [])
            return ("no prompt: it is only selected" +
                    (f" (by {', '.join(sorted(set(sel))[:4])})" if sel else ""))
        return ""


_TOKEN = re.compile(r"\s*(&&|\|\||!=|=|!|\(|\)|\"[^\"]*\"|[A-Za-z0-9_]+)")


def _tokens(expr: str) -> list[str]:
    return _TOKEN.findall(expr)


def _conjuncts(expr: str) -> list[str]:
    """Split a dependency expression at top-level '&&'."""
    parts, depth, cur = [], 0, []
    for tok in _tokens(expr):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        if tok == "&&" and depth == 0:
            parts.append(" ".join(cur))
            cur = []
        else:
            cur.append(tok)
    if cur:
        parts.append(" ".join(cur))
    return parts


_TRI = {"n": 0, "m": 1, "y": 2}


def _value(tok: str, final: dict[str, str]) -> str:
    if tok in _TRI:
        return tok
    if tok.startswith('"'):
        return tok.strip('"')
    return final.get(tok, "n")


def _eval(expr: str, final: dict[str, str]) -> int:
    """Tristate value (0/1/2) of a Kconfig expression under ``final``."""
    toks = _tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary() -> int:
        tok = take()
        if tok == "!":
            return 2 - primary()
        if tok == "(":
            v = disj()
            if peek() == ")":
                take()
            return v
        if peek() in ("=", "!="):
            op, rhs = take(), take()
            eq = _value(tok, final).strip('"') == _value(rhs, final).strip('"')
            return 2 if eq == (op == "=") else 0
        return _TRI.get(_value(tok, final), 0)

    def conj() -> int:
        v = primary()
        while peek() == "&&":
            take()
            v = min(v, primary())
        return v

    def disj() -> int:
        v = conj()
        while peek() == "||":
            take()
            v = max(v, conj())
        return v

    try:
        return disj()
    except IndexError:
        return 0


def _describe(term: str, final: dict[str, str]) -> str:
    syms = [t for t in _tokens(term) if re.fullmatch(r"[A-Z0-9_]+", t) and t not in _TRI]
    return ", ".join(f"{s}={_value(s, final)}" for s in dict.fromkeys(syms)) or "false"
