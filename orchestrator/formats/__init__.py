"""Result formats written into every run directory beside summary.json:

- ``junit.xml``  (junit.py): GitLab/Jenkins/GitHub test reports;
- ``kcidb.json`` (kcidb.py): KCIDB v5 (checkouts, builds, tests, issues, incidents);
- ``index.html`` (html.py): a static page, matrix overview + every report.

All three are pure functions of the RunResult (plus the report files in the directory),
so ``kto merge`` regenerates them from a merged summary.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

FILES = {"junit.xml": "junit", "kcidb.json": "kcidb", "index.html": "html"}

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(text: str) -> str:
    """Text safe for XML/JSON consumers: no control characters but \\t \\n \\r."""
    return _XML_BAD.sub("?", text or "")


def report_excerpt(directory: Path, rel: str, max_lines: int = 80) -> str | None:
    """The console text of a report file (after kto's header block), or None if the
    file is not in this results directory (or resolves outside it)."""
    from orchestrator.results import inside
    path = inside(directory, rel)
    if path is None:
        return None
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    head, sep, body = text.partition("\n\n")
    body = body if sep and head.startswith("TITLE:") else text
    lines = body.strip("\n").splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines in {rel})"]
    return clean_text("\n".join(lines))


def write_all(result) -> list[Path]:
    """Write every format into result.directory. A format that fails to render is a
    warning on stderr: it must never cost the run its summary.json or the other formats."""
    from orchestrator.formats import html, junit, kcidb
    written = []
    for name, mod in (("junit.xml", junit), ("kcidb.json", kcidb), ("index.html", html)):
        path = result.directory / name
        try:
            data = mod.render(result)
            # a unique temporary: two processes may write the same directory's formats
            # (kto nightly --from-results of one directory, raced by a CI retry)
            tmp = path.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                tmp.write_text(data)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(path)
        except Exception as e:   # noqa: BLE001 - reported, the run goes on
            print(f"kto: warning: could not write {path}: {type(e).__name__}: {e}",
                  file=sys.stderr)
    return written
