import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture
def repo_root() -> Path:
    return REPO


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
