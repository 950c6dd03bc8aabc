import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def make_tree(tmp_path):
    """A factory for a small kernel-like git tree as a series' source: ``make_tree(path,
    body)`` commits a kernel Makefile and ``body`` (str or bytes) at ``path`` as "base" in
    ``tmp_path/linux`` and returns that directory."""
    def make(path: str, body: str | bytes) -> Path:
        t = tmp_path / "linux"
        t.mkdir()

        def git(*argv):
            subprocess.run(["git", *argv], cwd=t, check=True, capture_output=True)
        git("init", "-q")
        git("config", "user.name", "Dev")
        git("config", "user.email", "dev@example.org")
        (t / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n"
                                    "EXTRAVERSION =\n")
        f = t / path
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            f.write_bytes(body)
        else:
            f.write_text(body)
        git("add", ".")
        git("commit", "-qm", "base")
        return t
    return make


@pytest.fixture(autouse=True)
def _summaries_follow_the_schema(monkeypatch):
    """Every summary.json a test writes in-process is validated against
    orchestrator/formats/summary.schema.json (results.validate raises on a violation)."""
    import json

    from orchestrator import results
    write = results.RunResult.write

    def checked(self, *a, **kw):
        path = write(self, *a, **kw)
        results.validate(json.loads(path.read_text()), path)
        return path
    monkeypatch.setattr(results.RunResult, "write", checked)
