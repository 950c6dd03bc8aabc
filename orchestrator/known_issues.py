"""known-issues.yaml: report titles a nightly expects, so that a night with only those is
green (kto run's summary marks them too, but still counts them). A list of entries;
``title`` is a Python regular expression searched in the report title (anchor it with
^...$ for an exact title), ``reason`` says why it is expected (a link, a bug number),
``arches`` and ``runs`` optionally narrow it:

    - title: '^BUG: Bad page state in hugetlb_sysctl_handler$'
      reason: stock 6.12.117 hugetlb vmemmap restore, see runs.yaml mm-vmemmap
      runs: [mm-vmemmap]
      arches: [x86_64]

Problems are one line naming the file and the line, like runs.yaml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import arch as arch_mod
from orchestrator import schema


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as e:
        return f"not a valid regular expression: {e}"
    return None


_SCHEMA = schema.List(schema.Mapping({
    "title": schema.Str(_regex),
    "reason": schema.Str(lambda v: None if v.strip() else "must say why it is expected"),
    "arches": schema.List(schema.Choice(list(arch_mod.ARCHES), "arch"), nonempty=True),
    "runs": schema.List(schema.Str(), nonempty=True),
}, required=["title", "reason"]))


@dataclass
class KnownIssue:
    title: str                  # regex, searched in the report title
    reason: str
    arches: list[str] = field(default_factory=list)    # empty: every arch
    runs: list[str] = field(default_factory=list)      # empty: every run
    where: str = ""             # file:line, for messages

    def matches(self, title: str, arch: str | None = None, run: str | None = None) -> bool:
        if self.arches and arch is not None and arch not in self.arches:
            return False
        if self.runs and run is not None and run not in self.runs:
            return False
        return re.search(self.title, title) is not None


DEFAULT = Path("known-issues.yaml")     # beside runs.yaml, in the working directory


def load_default(beside: Path | None = None) -> list[KnownIssue]:
    """./known-issues.yaml, else the one beside the runs file in use (``beside``: its
    directory), so kto run from a kernel tree still knows the project's known issues."""
    for path in (DEFAULT, *([Path(beside) / DEFAULT.name] if beside else [])):
        if path.exists():
            return load(path)
    return []


def load(path: Path) -> list[KnownIssue]:
    path = Path(path)
    data, lines = schema.load_yaml(path, _SCHEMA)
    return [KnownIssue(e["title"], e["reason"], e.get("arches", []), e.get("runs", []),
                       f"{path}:{lines.get(f'[{i}]', 1)}")
            for i, e in enumerate(data)]


def match(known: list[KnownIssue], title: str, arch: str | None = None,
          run: str | None = None) -> KnownIssue | None:
    return next((k for k in known if k.matches(title, arch, run)), None)
