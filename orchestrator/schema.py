"""Validate YAML against a small declarative schema, naming file and line on error.

Parsing goes through yaml.compose so every node keeps its line; the first problem
becomes one ConfigError line: ``runs.yaml:12: runs.nightly.arches[1]: unknown arch 'mips'``.

These files may come from anyone (a patch series' author, a CI artifact), so their cost is
capped before any of it is spent: the size read (MAX_BYTES), the nodes visited with aliases
expanded (MAX_NODES: a "billion laughs" of aliases is a few KB) and the nesting depth.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from orchestrator.errors import ConfigError

MAX_BYTES = 256 << 10    # kto's own files are a few KB; 256 KiB is far beyond any real one
MAX_NODES = 100_000       # nodes visited with aliases expanded
MAX_DEPTH = 64
# libyaml's composer when PyYAML has it (~10x faster on big hostile files); same nodes/marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Invalid(Exception):
    def __init__(self, node: yaml.Node | None, path: str, msg: str):
        self.node, self.path, self.msg = node, path, msg


class Type:
    def check(self, node: yaml.Node, path: str, lines: dict) -> Any:
        raise NotImplementedError

    @staticmethod
    def _scalar(node, path, tags: tuple[str, ...], what: str):
        if not isinstance(node, yaml.ScalarNode) or node.tag.rsplit(":", 1)[-1] not in tags:
            raise _Invalid(node, path, f"expected {what}, got {_describe(node)}")
        # Construct the one scalar directly (a serialize + re-parse cost ~0.2 ms each).
        return yaml.constructor.SafeConstructor().construct_object(node)


def _key(knode: yaml.Node, path: str) -> str:
    """A mapping key: a plain string (``? [a, b]`` keys are YAML, not kto)."""
    if not isinstance(knode, yaml.ScalarNode):
        raise _Invalid(knode, path, f"a key must be a plain name, got {_describe(knode)}")
    return str(knode.value)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = node.tag.rsplit(":", 1)[-1]
    return {"null": "nothing", "str": f"string {node.value!r}"}.get(kind, f"{kind} {node.value}")


class Str(Type):
    def __init__(self, validate: Callable[[str], str | None] | None = None):
        self.validate = validate    # returns an error message or None

    def check(self, node, path, lines):
        value = self._scalar(node, path, ("str",), "a string")
        if self.validate:
            err = self.validate(value)
            if err:
                raise _Invalid(node, path, err)
        return value


class Int(Type):
    def __init__(self, minimum: int | None = None):
        self.minimum = minimum

    def check(self, node, path, lines):
        value = self._scalar(node, path, ("int",), "an integer")
        if self.minimum is not None and value < self.minimum:
            raise _Invalid(node, path, f"must be >= {self.minimum}, got {value}")
        return value


class Bool(Type):
    def check(self, node, path, lines):
        return self._scalar(node, path, ("bool",), "true or false")


class Choice(Type):
    def __init__(self, choices: list[str], what: str = "value"):
        self.choices, self.what = list(choices), what

    def check(self, node, path, lines):
        value = self._scalar(node, path, ("str",), "a string")
        if value not in self.choices:
            raise _Invalid(node, path, f"unknown {self.what} {value!r} "
                                       f"(known: {', '.join(self.choices)})")
        return value


class Optional(Type):
    """The inner type, or null."""

    def __init__(self, inner: Type):
        self.inner = inner

    def check(self, node, path, lines):
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        return self.inner.check(node, path, lines)


class List(Type):
    def __init__(self, item: Type, nonempty: bool = False):
        self.item, self.nonempty = item, nonempty

    def check(self, node, path, lines):
        if not isinstance(node, yaml.SequenceNode):
            raise _Invalid(node, path, f"expected a list, got {_describe(node)}")
        if self.nonempty and not node.value:
            raise _Invalid(node, path, "must not be empty")
        out = []
        for i, n in enumerate(node.value):
            lines[f"{path}[{i}]"] = n.start_mark.line + 1
            out.append(self.item.check(n, f"{path}[{i}]", lines))
        return out


class Mapping(Type):
    """Fixed keys; unknown keys are errors (typos must not be silently ignored)."""

    def __init__(self, fields: dict[str, Type], required: list[str] = ()):
        self.fields, self.required = fields, list(required)

    def check(self, node, path, lines):
        if not isinstance(node, yaml.MappingNode):
            raise _Invalid(node, path, f"expected a mapping, got {_describe(node)}")
        out = {}
        for knode, vnode in node.value:
            key = _key(knode, path or "top level")
            sub = f"{path}.{key}" if path else key
            if key in out:
                raise _Invalid(knode, sub, "duplicate key")
            if key not in self.fields:
                raise _Invalid(knode, sub, f"unknown key {key!r} (known: "
                                           f"{', '.join(self.fields)})")
            lines[sub] = knode.start_mark.line + 1
            out[key] = self.fields[key].check(vnode, sub, lines)
        for key in self.required:
            if key not in out:
                raise _Invalid(node, path or "top level", f"missing required key {key!r}")
        return out


class Dict(Type):
    """Free-form names (e.g. run names) mapping to one value type."""

    def __init__(self, value: Type, nonempty: bool = False,
                 key: Callable[[str], str | None] | None = None):
        self.value, self.nonempty, self.key = value, nonempty, key   # key: validates names

    def check(self, node, path, lines):
        if not isinstance(node, yaml.MappingNode):
            raise _Invalid(node, path, f"expected a mapping, got {_describe(node)}")
        if self.nonempty and not node.value:
            raise _Invalid(node, path, "must not be empty")
        out = {}
        for knode, vnode in node.value:
            key = _key(knode, path or "top level")
            sub = f"{path}.{key}" if path else key
            if key in out:
                raise _Invalid(knode, sub, "duplicate key")
            if self.key and (err := self.key(key)):
                raise _Invalid(knode, sub, err)
            lines[sub] = knode.start_mark.line + 1
            out[key] = self.value.check(vnode, sub, lines)
        return out


def read_text(path: Path, what: str = "file", limit: int = MAX_BYTES) -> str:
    """The file as UTF-8 text, at most ``limit`` bytes: a ConfigError naming the file
    (and the line of a bad byte) otherwise. Reads no more than limit + 1 bytes, so
    /dev/zero or a huge file costs nothing."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: {what} larger than {limit // 1024} KiB: refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: {what} is not UTF-8 text "
                          f"(byte 0x{data[e.start]:02x})") from None


def _check_cost(node: yaml.Node) -> tuple[yaml.Node, str] | None:
    """The first node past MAX_NODES or MAX_DEPTH (aliases expanded): (node, why)."""
    count = 0
    stack = [(node, 0)]
    while stack:
        n, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            return n, f"more than {MAX_NODES} YAML nodes (aliases expanded): refused"
        if depth > MAX_DEPTH:
            return n, f"nested deeper than {MAX_DEPTH} levels: refused"
        if isinstance(n, yaml.SequenceNode):
            stack.extend((c, depth + 1) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
    return None


def load_yaml(path: Path, schema: Type) -> tuple[Any, dict[str, int]]:
    """Parse and validate ``path``; return (data, {dotted key path: line})."""
    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to parse: refused") from None
    if node is None:
        raise ConfigError(f"{path}: empty file")
    too_big = _check_cost(node)
    if too_big:
        raise ConfigError(f"{path}:{too_big[0].start_mark.line + 1}: {too_big[1]}")
    lines: dict[str, int] = {}
    try:
        return schema.check(node, "", lines), lines
    except _Invalid as e:
        line = e.node.start_mark.line + 1 if e.node is not None else 1
        where = f"{e.path}: " if e.path else ""
        raise ConfigError(f"{path}:{line}: {where}{e.msg}") from None


def error_at(path: Path, lines: dict[str, int], key: str, msg: str) -> ConfigError:
    """A ConfigError for a semantic problem found after schema validation."""
    return ConfigError(f"{path}:{lines.get(key, 1)}: {key}: {msg}")
