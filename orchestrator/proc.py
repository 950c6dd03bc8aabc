"""Subprocess helpers: argv lists only (never a shell string built from config)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from orchestrator.errors import KtoError


def run(argv: list[str], cwd: Path | None = None, env: dict | None = None,
        check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` capturing text output; a failure becomes a one-line KtoError."""
    try:
        cp = subprocess.run(argv, cwd=cwd, env=env, input=input, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise KtoError(f"{argv[0]}: command not found (run scripts/setup-system.sh)")
    if check and cp.returncode != 0:
        err = (cp.stderr or cp.stdout).strip().splitlines()
        last = err[-1] if err else f"exit status {cp.returncode}"
        raise KtoError(f"{' '.join(argv[:3])}: {last}")
    return cp


def git(repo: Path, *args: str, check: bool = True, env: dict | None = None,
        input: str | None = None) -> str:
    return run(["git", "-C", str(repo), *args], check=check, env=env, input=input).stdout.strip()
