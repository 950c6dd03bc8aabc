"""A person inside a guest: the ssh command line for a booted guest (key-based, host key
pinned from the connection kto already made, 127.0.0.1 only), ``kto shell``'s interactive
session, and ``kto run --keep``'s guests left up until Ctrl-C."""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from orchestrator.errors import KtoError
from orchestrator.vm import Vm


def ssh_argv(guest: Vm, key: Path, directory: Path) -> list[str]:
    """``ssh`` argv into ``guest``. The host key is the one kto's own SSH connection got
    from this guest, written to ``directory``/known_hosts and checked strictly."""
    if guest.ssh is None:
        raise KtoError("guest is not booted")
    host_key = guest.ssh.get_transport().get_remote_server_key()
    known = directory / "known_hosts"
    known.write_text(f"[127.0.0.1]:{guest.port} {host_key.get_name()} "
                     f"{host_key.get_base64()}\n")
    return ["ssh", "-i", str(key), "-p", str(guest.port),
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "root@127.0.0.1"]


def interactive_shell(argv: list[str]) -> int:
    """Run ssh on this terminal until the user leaves the guest; its exit status."""
    if shutil.which(argv[0]) is None:
        raise KtoError(f"kto shell needs the {argv[0]} client (Debian: openssh-client)")
    # The terminal's Ctrl-C belongs to the guest's shell (ssh puts it in raw mode); should
    # a SIGINT reach kto anyway, ssh gets it and kto cleans up after ssh returns.
    with _ignoring(signal.SIGINT):
        return subprocess.call([*argv[:-1], "-t", argv[-1]])


@contextlib.contextmanager
def _ignoring(sig):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(sig, old)


# -- kto run --keep --

_KEEP = threading.Event()       # --keep is on
_RELEASE = threading.Event()    # the user pressed Ctrl-C: let the kept guests go


@contextlib.contextmanager
def kept_guests():
    """While active, a finished guest waits in ``hold`` until Ctrl-C. The first Ctrl-C
    releases the guests (the run then ends normally, results complete); a second one
    interrupts the run as usual."""
    def on_sigint(signum, frame):
        if _RELEASE.is_set():
            raise KeyboardInterrupt
        _RELEASE.set()      # no printing here: the main thread may hold progress's lock
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = signal.signal(signal.SIGINT, on_sigint)
    _KEEP.set()
    _RELEASE.clear()
    try:
        yield
    finally:
        _KEEP.clear()
        signal.signal(signal.SIGINT, old)


def keeping() -> bool:
    """Whether kto run --keep is on (a Ctrl-C is then the guests', not the builds')."""
    return _KEEP.is_set()


def hold(guest: Vm, key: Path, directory: Path, name: str, progress) -> None:
    """With --keep: leave ``guest`` up after its workloads until Ctrl-C (or it dies)."""
    if not _KEEP.is_set() or _RELEASE.is_set() or not guest.alive():
        return
    argv = ssh_argv(guest, key, directory)
    import shlex
    progress(f"{name}: guest kept up; get in with: {shlex.join(argv)}  (Ctrl-C stops it)")
    while guest.alive() and not _RELEASE.wait(0.5):
        pass
    if _RELEASE.is_set():
        progress(f"{name}: Ctrl-C: stopping the kept guest (Ctrl-C again interrupts the run)")
