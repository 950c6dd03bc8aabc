"""Validate YAML against a small declarative schema, naming file and line on error.

Parsing goes through yaml.compose so every node keeps its line; the first problem
becomes one ConfigError line: ``runs.yaml:12: runs.nightly.arches[1]: unknown arch 'mips'``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from orchestrator.errors import ConfigError


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
        return yaml.safe_load(yaml.serialize(node))


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
            key = knode.value
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

    def __init__(self, value: Type, nonempty: bool = False):
        self.value, self.nonempty = value, nonempty

    def check(self, node, path, lines):
        if not isinstance(node, yaml.MappingNode):
            raise _Invalid(node, path, f"expected a mapping, got {_describe(node)}")
        if self.nonempty and not node.value:
            raise _Invalid(node, path, "must not be empty")
        out = {}
        for knode, vnode in node.value:
            key = str(knode.value)
            sub = f"{path}.{key}" if path else key
            if key in out:
                raise _Invalid(knode, sub, "duplicate key")
            lines[sub] = knode.start_mark.line + 1
            out[key] = self.value.check(vnode, sub, lines)
        return out


def load_yaml(path: Path, schema: Type) -> tuple[Any, dict[str, int]]:
    """Parse and validate ``path``; return (data, {dotted key path: line})."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if node is None:
        raise ConfigError(f"{path}: empty file")
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
