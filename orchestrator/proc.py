"""Subprocess helpers: argv lists only (never a shell string built from config).

Every child kto starts dies with it: PR_SET_PDEATHSIG is set between fork and exec, so a
SIGKILLed kto leaves no tar, git or make running on (their own children follow: make
passes SIGTERM on, xz behind tar gets SIGPIPE).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path

from orchestrator.errors import KtoError

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL):
    """A preexec_fn: the child gets ``sig`` when the thread that started it ends (kto's
    callers wait for their children on that thread, so: when kto dies)."""
    parent = os.getpid()

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:      # kto died between fork and prctl
            os.kill(os.getpid(), sig)
    return preexec


def run(argv: list[str], cwd: Path | None = None, env: dict | None = None,
        check: bool = True, input: str | bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` capturing output (text, or bytes when ``input`` is bytes); a failure
    becomes a one-line KtoError."""
    text = not isinstance(input, bytes)
    try:
        cp = subprocess.run(argv, cwd=cwd, env=env, input=input, text=text,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=die_with_parent())
    except FileNotFoundError:
        raise KtoError(f"{argv[0]}: command not found (run scripts/setup-system.sh)")
    if not text:
        cp.stdout = cp.stdout.decode("utf-8", "replace")
        cp.stderr = cp.stderr.decode("utf-8", "replace")
    if check and cp.returncode != 0:
        err = (cp.stderr or cp.stdout).strip().splitlines()
        last = err[-1] if err else f"exit status {cp.returncode}"
        raise KtoError(f"{' '.join(argv[:3])}: {last}")
    return cp


def git(repo: Path, *args: str, check: bool = True, env: dict | None = None,
        input: str | bytes | None = None) -> str:
    return run(["git", "-C", str(repo), *args], check=check, env=env, input=input).stdout.strip()
