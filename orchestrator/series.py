"""Parse a patch series (mbox, directory of .patch files, single patch, or a git commit
range) into an ordered list of patches, refusing anything ambiguous with one clear line.

Each patch keeps its original mail text untouched (``git am`` does its own decoding of
quoted-printable / charsets); the stdlib ``email`` package is only used to read headers and
the decoded body for diff inspection (files, hunks, function names).
"""
from __future__ import annotations

import email
import email.policy
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ConfigError

# git format-patch writes "From <sha> Mon Sep 17 00:00:00 2001"; b4 writes
# "From mboxrd@z Thu Jan  1 00:00:00 1970". Requiring a time and a year (like git mailsplit)
# keeps a commit-message line starting with "From " from splitting a message.
_FROM_LINE = re.compile(r"^From \S+ .*\b\d{1,2}:\d\d(:\d\d)?\b.*\b\d{4}\s*$")
_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:")
_REPLY = re.compile(r"^\s*(re|fwd?|aw|sv|antw)\s*:", re.I)
_BRACKETS = re.compile(r"^\s*\[([^\]]*)\]")
_NUM = re.compile(r"^(\d+)/(\d+)$")
_VER = re.compile(r"^v(\d+)$", re.I)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
# A C definition line: at column 0, optional type words/stars, then name( ; no '=' before it.
_C_DEF = re.compile(r"^(?:[A-Za-z_][\w \t*]*?[\s*])?\**([A-Za-z_]\w*)\s*\(")
_SYSCALL = re.compile(r"^(?:COMPAT_)?SYSCALL_DEFINE\d\s*\(\s*(\w+)")
_NOT_NAMES = frozenset(
    "if for while switch return sizeof typeof do else case goto int char void long short "
    "unsigned signed float double bool struct union enum static inline const volatile extern "
    "__attribute__ asm __asm__ defined".split())
_DIFF_EXTS = (".patch", ".diff", ".mbox", ".mbx", ".eml")


@dataclass
class Hunk:
    path: str
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    header_func: str      # the @@ line's trailing function context ("" if none)
    text: str             # the @@ line and the hunk's lines

    def functions(self) -> set[str]:
        """Functions whose lines this hunk changes."""
        return _hunk_functions(self)


@dataclass
class Patch:
    index: int
    total: int
    subject: str
    author: str
    version: int | None
    source: str
    text: str
    commit: str | None = None
    # The codec that turns ``text`` back into the file's exact bytes (utf-8, or latin-1 for
    # legacy 8-bit mail): git am gets those bytes, never a re-encoding.
    codec: str = field(default="utf-8", repr=False, compare=False)
    # decoded body (QP/charset undone) used for diff inspection; not part of the identity
    body: str = field(default="", repr=False, compare=False)

    def label(self) -> str:
        return f'patch {self.index}/{self.total} "{self.subject}"'

    def data(self) -> bytes:
        """The patch as the bytes it came as (what git am must see)."""
        return self.text.encode(self.codec)

    def _diff(self) -> str:
        if not self.body:
            raw = _strip_from_line(self.text).encode(self.codec, "replace")
            self.body = _decoded_body(email.message_from_bytes(raw, policy=email.policy.default))
        return self.body

    def files(self) -> list[str]:
        return _diff_files(self._diff())

    def hunks(self) -> list[Hunk]:
        return _parse_hunks(self._diff())

    def functions(self) -> set[str]:
        names: set[str] = set()
        for h in self.hunks():
            names |= _hunk_functions(h)
        return names


@dataclass
class Series:
    patches: list[Patch]
    cover_subject: str | None
    version: int | None
    origin: str

    def mbox(self) -> str:
        return "".join(p.text if p.text.endswith("\n") else p.text + "\n" for p in self.patches)


# ---------------------------------------------------------------- entry points

@dataclass(frozen=True)
class Selection:
    """Which patches of a series to take (b4's cherry-pick habit): ``partial`` takes the
    patches that are there in order when some are missing; ``numbers`` takes exactly those
    patch numbers (n of n/m, or the position in an unnumbered series), in that order."""
    partial: bool = False
    numbers: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return self.partial or bool(self.numbers)

    def describe(self) -> str:
        if self.numbers:
            return "patches " + _ranges(self.numbers)
        return "the patches present" if self.partial else "all patches"


def parse_numbers(text: str, flag: str = "--patches") -> tuple[int, ...]:
    """``1,3-5`` -> (1, 3, 4, 5); one line naming the bad part otherwise."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ConfigError(f"{flag} {text}: {part!r} is not a number or a range N-M")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if a < 1 or b < a:
            raise ConfigError(f"{flag} {text}: {part!r} is not an ascending range of "
                              "patch numbers from 1")
        for n in range(a, b + 1):
            if n in out:
                raise ConfigError(f"{flag} {text}: patch {n} is selected twice")
            out.append(n)
    return tuple(out)


def _ranges(numbers) -> str:
    parts, run = [], []
    for n in numbers:
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def load_series(spec: str | Path, base_dir: Path | None = None,
                select: Selection | None = None) -> Series:
    """Load a series from an mbox/.mbx, a .patch file, a directory, or ``TREE:A..B``;
    ``select`` takes some of its patches (a lone patch of a thread)."""
    select = select or Selection()
    series = _load_series(spec, base_dir, select)
    if select.numbers and series.patches and series.patches[0].commit is not None:
        series = pick(series, select)     # a commit range: positions in the range
    return series


def pick(series: Series, select: Selection) -> Series:
    by_n = {p.index: p for p in series.patches}
    missing = [n for n in select.numbers if n not in by_n]
    if missing:
        raise ConfigError(f"{series.origin}: --patches {_ranges(select.numbers)}: no patch "
                          f"{missing[0]} (the range has {len(by_n)})")
    return Series([by_n[n] for n in select.numbers], series.cover_subject, series.version,
                  series.origin)


def _load_series(spec, base_dir, select: Selection) -> Series:
    origin = str(spec)
    if not origin.strip():
        raise ConfigError("patch series: empty path")   # Path("") would mean the cwd
    path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if path.exists():
        if path.is_dir():
            return _load_dir(path, origin, select)
        return _load_file(path, origin, select)
    if isinstance(spec, str):
        m = re.match(r"^(.+):([^:]*\.\.[^:]*)$", spec)
        if m:
            tree = Path(m.group(1))
            if base_dir is not None and not tree.is_absolute():
                tree = base_dir / tree
            return load_commit_range(tree, m.group(2), origin=origin)
    raise ConfigError(f"{origin}: no such file or directory")


def load_commit_range(tree: Path, rev_range: str, origin: str | None = None) -> Series:
    """Commits of ``rev_range`` in the git tree ``tree``, oldest first, one patch each."""
    origin = origin or f"{tree}:{rev_range}"
    if rev_range.startswith("-"):
        raise ConfigError(f"{origin}: {rev_range!r} is not a revision range")
    if not Path(tree).is_dir():
        raise ConfigError(f"{origin}: {tree} is not a directory")
    shas = _git(tree, origin, "rev-list", "--reverse", rev_range).split()
    if not shas:
        raise ConfigError(f"{origin}: the range has no commits (empty series)")
    merges = set(_git(tree, origin, "rev-list", "--merges", rev_range).split())
    patches = []
    for i, sha in enumerate(shas, 1):
        source = f"{tree}:{sha[:12]}"
        if sha in merges:
            raise ConfigError(f"{source}: commit {i} of {origin} is a merge; a series must be linear")
        text, codec = _decode(_git_bytes(tree, origin, "format-patch", "--stdout",
                                         "--no-signature", "-1", sha))
        msg = _parse_message(text, "commit", source, codec)
        if not msg.has_diff:
            raise ConfigError(f'{source}: commit {i} "{msg.subject}" has no diff (empty commit)')
        patches.append(Patch(index=i, total=len(shas), subject=msg.subject, author=msg.author,
                             version=None, source=source, text=msg.text, commit=sha,
                             codec=codec, body=msg.body))
    return Series(patches=patches, cover_subject=None, version=None, origin=origin)


# ---------------------------------------------------------------- message parsing

@dataclass
class _Msg:
    where: str            # short name for series-level errors: "message 3" / "0003-x.patch"
    source: str           # full name: "series.mbox message 3" / "dir/0003-x.patch"
    text: str
    subject: str = ""
    author: str = ""
    version: int | None = None
    n: int | None = None
    m: int | None = None
    tagged: bool = False  # subject carries [PATCH ...] / [RFC ...]
    reply: bool = False
    body: str = ""
    has_diff: bool = False
    codec: str = "utf-8"


def _strip_from_line(text: str) -> str:
    first, sep, rest = text.partition("\n")
    return rest if _FROM_LINE.match(first) else text


def _parse_message(text: str, where: str, source: str, codec: str = "utf-8") -> _Msg:
    if not _FROM_LINE.match(text.partition("\n")[0]):
        # git am wants an mbox; a bare mail (headers first) gets the same dummy From line
        # git format-patch would write.
        text = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n" + text
    if not text.endswith("\n"):
        text += "\n"
    # Parse bytes, not str: the email package only decodes 8bit bodies by charset from bytes.
    msg = email.message_from_bytes(_strip_from_line(text).encode(codec, "replace"),
                                   policy=email.policy.default)
    out = _Msg(where=where, source=source, text=text, codec=codec)
    raw_subject = _header(msg, "subject")
    out.reply = bool(_REPLY.match(raw_subject))
    out.subject, out.version, out.n, out.m, out.tagged = _split_subject(raw_subject)
    out.author = _address(msg, _header(msg, "from"))
    out.body = _decoded_body(msg)
    # In-body "From:" (first body line) overrides the mail sender, as git am does.
    first = out.body.lstrip("\n").partition("\n")[0]
    if first.lower().startswith("from:"):
        out.author = _address(msg, first[5:].strip(), raw=True)
    out.has_diff = _has_diff(out.body)
    return out


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:   # malformed header: fall back to the raw text
        value = next((v for k, v in msg.raw_items() if k.lower() == name), None)
    return " ".join(str(value or "").split())


def _address(msg, value: str, raw: bool = False) -> str:
    """``Name <email>`` with RFC 2047 words decoded and no quoting."""
    try:
        header = email.policy.default.header_factory("from", value) if raw else msg.get("from")
        addrs = header.addresses if header is not None else ()
        if addrs:
            a = addrs[0]
            return f"{a.display_name} <{a.addr_spec}>" if a.display_name else a.addr_spec
    except Exception:
        pass
    return value


def _split_subject(subject: str) -> tuple[str, int | None, int | None, int | None, bool]:
    """Strip leading [...] groups as git am does, reading vN, n/m and the PATCH/RFC tag."""
    version = n = m = None
    tagged = False
    s = _REPLY.sub("", subject) if _REPLY.match(subject) else subject
    while (g := _BRACKETS.match(s)):
        for tok in g.group(1).replace(",", " ").split():
            if tok.upper() in ("PATCH", "RFC", "RESEND"):
                tagged = True
            elif (v := _VER.match(tok)):
                version = int(v.group(1))
            elif (num := _NUM.match(tok)):
                n, m = int(num.group(1)), int(num.group(2))
        s = s[g.end():]
    return s.strip(), version, n, m, tagged


def _decoded_body(msg) -> str:
    """Body text with transfer encoding and charset undone; all text parts for multipart."""
    parts = [p for p in msg.walk() if not p.is_multipart()] if msg.is_multipart() else [msg]
    out = []
    for p in parts:
        if p.get_content_maintype() != "text":
            continue
        try:
            out.append(p.get_content())
        except Exception:   # unknown charset or broken encoding: best effort
            raw = p.get_payload(decode=True) or b""
            out.append(raw.decode("utf-8", "replace"))
    return "\n".join(out).replace("\r\n", "\n")


def _has_diff(body: str) -> bool:
    if re.search(r"^diff --git ", body, re.M) or "\nGIT binary patch\n" in body:
        return True
    return bool(re.search(r"^--- \S.*\n\+\+\+ \S.*\n@@ ", body, re.M))


def _split_mbox(text: str) -> list[str]:
    # Only "\n" ends a line here (str.splitlines would also split at form feeds etc.).
    starts = [m.start() for m in re.finditer(r"(?m)^From .*$", text)
              if _FROM_LINE.match(m.group(0))]
    starts.append(len(text))
    return [text[a:b] for a, b in zip(starts, starts[1:])]


def _read(path: Path, origin: str) -> tuple[str, str]:
    """Text and the codec that gives back the file's exact bytes."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{origin}: cannot read: {e.strerror or e}")
    return _decode(data)


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Legacy 8-bit mail; latin-1 maps every byte so nothing is lost for inspection,
        # and encoding with it gives back the exact bytes (Patch.data).
        return data.decode("latin-1"), "latin-1"


def _file_messages(path: Path, name: str, single_where: str | None) -> list[_Msg]:
    """Messages of one file. ``single_where`` names them in a directory ("0002-x.patch");
    None means the file is the whole series and messages are "message N"."""
    text, codec = _read(path, name)
    chunks = _split_mbox(text)
    if not chunks:
        body = text.lstrip()
        if not body:
            return []
        if not _HEADER_LINE.match(body):
            raise ConfigError(f"{name}: not a mail-format patch (no From:/Subject: headers); "
                              f"git am needs git format-patch output")
        chunks = [body]
    msgs = []
    for i, chunk in enumerate(chunks, 1):
        if single_where is None:
            # a one-patch file is named by itself, a real mbox by message position
            where = f"message {i}"
            source = f"{name} message {i}" if len(chunks) > 1 else name
        elif len(chunks) == 1:
            where, source = single_where, name
        else:
            where, source = f"{single_where} message {i}", f"{name} message {i}"
        msgs.append(_parse_message(chunk, where, source, codec))
    return msgs


def _load_file(path: Path, origin: str, select: Selection = Selection()) -> Series:
    return _build(_file_messages(path, origin, None), origin, select)


def _load_dir(path: Path, origin: str, select: Selection = Selection()) -> Series:
    series_file = path / "series"
    if series_file.is_file():
        names: list[str] = []
        seen: dict[str, int] = {}
        for lineno, line in enumerate(_read(series_file, f"{origin}/series")[0].splitlines(), 1):
            entry = line.split("#", 1)[0].split()
            if not entry:
                continue
            name = entry[0]   # quilt allows options (-p1) after the name
            if not (path / name).is_file():
                raise ConfigError(f"{Path(origin) / 'series'}:{lineno}: {name} does not exist")
            if name in seen:
                raise ConfigError(f"{Path(origin) / 'series'}:{lineno}: {name} is listed twice "
                                  f"(also line {seen[name]})")
            seen[name] = lineno
            names.append(name)
    else:
        names = sorted((p.name for p in path.iterdir()
                        if p.is_file() and p.name.endswith(_DIFF_EXTS)), key=_natural)
    if not names:
        raise ConfigError(f"{origin}: no .patch files (empty series)")
    msgs = []
    for name in names:
        msgs += _file_messages(path / name, str(Path(origin) / name), name)
    return _build(msgs, origin, select)


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# ---------------------------------------------------------------- ordering and validation

def _build(msgs: list[_Msg], origin: str, select: Selection = Selection()) -> Series:
    covers = [m for m in msgs if not m.reply and m.n == 0]
    patches = [m for m in msgs if not m.reply and m.n != 0 and (m.tagged or m.has_diff)]
    if not patches:
        raise ConfigError(f"{origin}: no patches in it (empty series)")

    versions: dict[int, list[_Msg]] = {}
    for m in covers + patches:
        versions.setdefault(m.version or 1, []).append(m)
    if len(versions) > 1:
        def who(ms):
            names = [m.where for m in ms]
            return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        parts = " and ".join(f"v{v} ({who(ms)})" for v, ms in sorted(versions.items()))
        raise ConfigError(f"{origin}: mixed versions in one series: {parts}")
    version = next(iter(versions))
    version = version if any(m.version for m in covers + patches) else None

    if len(covers) > 1:
        raise ConfigError(f"{origin}: two cover letters: {covers[0].where} "
                          f'"{covers[0].subject}" and {covers[1].where} "{covers[1].subject}"')
    cover = covers[0] if covers else None

    numbered = [m for m in patches if m.n is not None]
    if numbered and len(numbered) != len(patches):
        odd = next(m for m in patches if m.n is None)
        raise ConfigError(f'{origin}: {odd.where} "{odd.subject}" has no n/m numbering but '
                          f"{numbered[0].where} is {numbered[0].n}/{numbered[0].m}")

    if numbered:
        if cover is not None:
            total = cover.m
        else:
            total = Counter(m.m for m in patches).most_common(1)[0][0]
        for m in patches:
            if m.m != total:
                raise ConfigError(f"{origin}: {m.where} says {m.n}/{m.m} but the series is "
                                  f"{total} patches")
            if m.n > total:
                raise ConfigError(f"{origin}: {m.where} says {m.n}/{m.m}, past the end")
        by_n: dict[int, _Msg] = {}
        for m in patches:
            if m.n in by_n:
                a = by_n[m.n]
                raise ConfigError(f"{origin}: two messages are patch {m.n}/{total}: "
                                  f'{a.where} "{a.subject}" and {m.where} "{m.subject}"')
            by_n[m.n] = m
        missing = [i for i in range(1, total + 1) if i not in by_n]
        have = _ranges(sorted(by_n))
        if select.numbers:
            absent = [i for i in select.numbers if i not in by_n]
            if absent:
                raise ConfigError(f"{origin}: --patches {_ranges(select.numbers)}: patch "
                                  f"{absent[0]}/{total} is not in it (have {have})")
            ordered = [by_n[i] for i in select.numbers]
        elif missing and not select.partial:
            what = (f"patch {missing[0]}/{total} is missing" if len(missing) == 1 else
                    f"patches {', '.join(f'{i}/{total}' for i in missing)} are missing")
            listed = ",".join(str(i) for i in sorted(by_n))
            raise ConfigError(f"{origin}: {what} (have {listed}); to try only what is "
                              f"there, give --partial (or --patches {have})")
        else:
            ordered = [by_n[i] for i in sorted(by_n)]
    else:
        total = len(patches)
        for i, m in enumerate(patches, 1):
            m.n, m.m = i, total
        ordered = patches
        if select.numbers:
            absent = [i for i in select.numbers if i > total]
            if absent:
                raise ConfigError(f"{origin}: --patches {_ranges(select.numbers)}: no patch "
                                  f"{absent[0]} (the series has {total})")
            ordered = [patches[i - 1] for i in select.numbers]

    for m in ordered:
        if not m.has_diff:
            raise ConfigError(f'{m.source}: patch {m.n}/{total} "{m.subject}" has no diff')

    return Series(
        patches=[Patch(index=m.n, total=total, subject=m.subject, author=m.author,
                       version=m.version, source=m.source, text=m.text, codec=m.codec,
                       body=m.body)
                 for m in ordered],
        cover_subject=cover.subject if cover else None, version=version, origin=origin)


# ---------------------------------------------------------------- diff inspection

def _unquote_path(p: str) -> str:
    """git quotes paths with unusual characters: "a/foo\\tbar"."""
    p = p.strip()
    if p.startswith('"') and p.endswith('"'):
        p = p[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape") \
            .encode("latin-1", "replace").decode("utf-8", "replace")
    return p


def _strip_prefix(p: str) -> str | None:
    p = _unquote_path(p.split("\t")[0])
    if p == "/dev/null":
        return None
    return p.split("/", 1)[1] if "/" in p else p


def _diff_files(body: str) -> list[str]:
    files: list[str] = []

    def add(p):
        if p and p not in files:
            files.append(p)

    lines = body.split("\n")
    git = any(l.startswith("diff --git ") for l in lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            old = new = None
            rest = line[len("diff --git "):]
            j = i + 1
            while j < len(lines) and not lines[j].startswith(("diff --git ", "@@ ")):
                l = lines[j]
                if l.startswith(("rename from ", "copy from ")):
                    old = _unquote_path(l.split(" ", 2)[2])
                elif l.startswith(("rename to ", "copy to ")):
                    new = _unquote_path(l.split(" ", 2)[2])
                elif l.startswith("--- "):
                    old = _strip_prefix(l[4:]) or old
                elif l.startswith("+++ "):
                    new = _strip_prefix(l[4:]) or new
                j += 1
            if old is None and new is None:
                # mode change / binary: "a/x b/x" with the same path twice
                half = (len(rest) - 1) // 2
                if rest[:half].split("/", 1)[-1] == rest[half + 1:].split("/", 1)[-1]:
                    new = rest[half + 1:].split("/", 1)[-1]
            add(old)
            add(new)
            i = j
            continue
        if not git and line.startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            # plain (non-git) unified diff
            add(_strip_prefix(line[4:]))
            add(_strip_prefix(lines[i + 1][4:]))
            i += 2
            continue
        i += 1
    return files


def _parse_hunks(body: str) -> list[Hunk]:
    hunks: list[Hunk] = []
    lines = body.split("\n")
    path = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            path = None
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            path = _strip_prefix(lines[i + 1][4:]) or _strip_prefix(line[4:])
            i += 2
            continue
        m = _HUNK.match(line)
        if m and path is not None:
            old_len = int(m.group(2)) if m.group(2) is not None else 1
            new_len = int(m.group(4)) if m.group(4) is not None else 1
            # Count lines so the "-- " signature after the last hunk is not taken as a removal.
            o, n = old_len, new_len
            j = i + 1
            while j < len(lines) and (o > 0 or n > 0):
                l = lines[j]
                c = l[:1]
                if c == "-":
                    o -= 1
                elif c == "+":
                    n -= 1
                elif c in (" ", ""):   # mailers may strip the space of an empty context line
                    o -= 1
                    n -= 1
                elif c != "\\":
                    break
                j += 1
            if j < len(lines) and lines[j].startswith("\\"):
                j += 1
            hunks.append(Hunk(path, int(m.group(1)), old_len, int(m.group(3)), new_len,
                              m.group(5).strip(), "\n".join(lines[i:j]) + "\n"))
            i = j
            continue
        i += 1
    return hunks


def _def_names(line: str) -> set[str]:
    """Function names a C definition line introduces ('' set if it is not one)."""
    if not line or line[0] in " \t#{}/*" or line.rstrip().endswith(";"):
        return set()    # indented code, preprocessor, prototype, macro invocation
    m = _C_DEF.match(line)
    if not m or "=" in line[:m.start(1)]:
        return set()
    name = m.group(1)
    sc = _SYSCALL.match(line[m.start(1):])
    if sc:
        # SYSCALL_DEFINEn(mmap, ...) shows up in stacks as __do_sys_mmap, __se_sys_mmap, ...
        s = sc.group(1)
        return {f"sys_{s}", f"__do_sys_{s}", f"__se_sys_{s}", f"__x64_sys_{s}",
                f"__arm64_sys_{s}", f"__ia32_sys_{s}", f"__do_compat_sys_{s}"}
    if name in _NOT_NAMES or name.isupper():   # keywords; ALL_CAPS are macro uses
        return set()
    return {name}


def _hunk_functions(h: Hunk) -> set[str]:
    """The function each changed line is in: the @@ context, superseded by any definition
    line met inside the hunk (the hunk may start just before a function or span two)."""
    names: set[str] = set()
    current = _def_names(h.header_func)
    for line in h.text.split("\n")[1:]:
        c, code = line[:1], line[1:]
        defs = _def_names(code)
        if defs:
            current = defs
        if c and c in "+-":
            names |= current
        if code.startswith("}"):
            current = set()     # past the function's closing brace: file scope
    return names


def _git(tree: Path, origin: str, *args: str) -> str:
    return _decode(_git_bytes(tree, origin, *args))[0]


def _git_bytes(tree: Path, origin: str, *args: str) -> bytes:
    try:
        cp = subprocess.run(["git", "-C", str(tree), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise ConfigError(f"{origin}: git: command not found")
    if cp.returncode != 0:
        err = cp.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"{origin}: git {args[0]} failed: {err[0] if err else cp.returncode}")
    return cp.stdout
