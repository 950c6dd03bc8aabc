"""VM: a kernel + initramfs under QEMU, with two channels into the guest.

- The serial console, driven through pexpect and saved whole to the results. A reader
  thread drains it continuously (a full pty would stall the guest's printk).
- SSH (paramiko) to a hostfwd port bound to 127.0.0.1 only, key-based.

``panic=-1`` + ``-no-reboot`` end QEMU the moment the kernel dies. Every QEMU process is
killed on every exit path: the context manager, an atexit hook, SIGTERM turned into an
exception, and PR_SET_PDEATHSIG should kto itself be killed.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import select
import shlex
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pexpect

from orchestrator import cache
from orchestrator.arch import Arch
from orchestrator.errors import KtoError

READY_MARK = "kto: guest ready"
_CRLF = re.compile(rb"\r+\n")
FAILED_MARK = "kto: dropbear failed to start"
_LIVE: set["Vm"] = set()


_NO_NEW_GUESTS = threading.Event()


def stop_all(refuse_new: bool = False) -> None:
    """Stop every guest this process started (exit, SIGTERM, an interrupted run). With
    ``refuse_new``, a job thread that would reboot its guest next gets an error instead."""
    if refuse_new:
        _NO_NEW_GUESTS.set()
    for vm in list(_LIVE):
        vm.stop()


atexit.register(stop_all)


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _sigterm)


def _pdeathsig() -> None:
    # Runs in the child between fork and exec: die with kto, whatever kills it.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


PORT_ATTEMPTS = 5
# QEMU's words when the SSH forward's port is already bound (it exits at once).
_HOSTFWD_FAILED = "Could not set up host forwarding rule"


def free_port() -> int:
    """A port free now; QEMU binds it a moment later, so boot() retries if it was taken."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class VmSpec:
    arch: Arch
    kernel: Path
    initrd: Path
    memory_mb: int = 2048
    cpus: int = 2
    accel: str = "tcg"            # "tcg" | "kvm"
    cmdline_extra: list[str] = field(default_factory=list)

    def cmdline(self) -> str:
        return " ".join([f"console={self.arch.console}", self.arch.earlycon, "rdinit=/init",
                         "panic=-1", "printk.devkmsg=on",
                         # KASAN KUnit alone prints ~1 MB: keep all of it for dmesg readers.
                         "log_buf_len=8M", *self.cmdline_extra])

    def argv(self, ssh_port: int) -> list[str]:
        a = self.arch
        machine = list(a.machine)
        accel = ["-accel", self.accel]
        if self.accel == "kvm" and "-cpu" in machine:
            machine[machine.index("-cpu") + 1] = "host"
        return [a.qemu, *machine, *accel, "-smp", str(self.cpus), "-m", str(self.memory_mb),
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
                "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
                "-device", "virtio-net-pci,netdev=net0", "-device", "virtio-rng-pci",
                "-kernel", str(self.kernel), "-initrd", str(self.initrd),
                "-append", self.cmdline()]


@dataclass
class BootResult:
    outcome: str          # "ready" | "panic" | "qemu-exited" | "boot-timeout" | "ssh-refused"
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ready"


@dataclass
class CommandResult:
    argv: list[str]
    exit_code: int | None    # None: timed out or connection lost
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


class Console:
    """Drains QEMU's serial console into a file and a buffer; waits for patterns."""

    def __init__(self, child: pexpect.spawn, log_path: Path):
        self.child = child
        # Lines already in the log (earlier boots): line numbers stay file-relative.
        self.base_lines = log_path.read_bytes().count(b"\n") if log_path.exists() else 0
        self.log = open(log_path, "ab")
        self.text = ""
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                data = pending + self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                break
            # The kernel writes \r\n and the pty adds its own \r: store plain \n lines.
            # A trailing \r may be half of a line ending split across two reads.
            pending = b"\r" if data.endswith(b"\r") else b""
            data = _CRLF.sub(b"\n", data[:-1] if pending else data)
            self.log.write(data)
            self.log.flush()
            with self.cond:
                self.text += data.decode("utf-8", "replace")
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.log.close()

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match | None:
        """Wait until ``pattern`` appears after offset ``start``; None on timeout or EOF."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.text, start)
                if m or self.closed:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))

    def line_count(self) -> int:
        """Lines in the console log file so far (for spans of workloads in the log)."""
        with self.cond:
            return self.base_lines + self.text.count("\n")

    def tail(self, lines: int = 30) -> str:
        with self.cond:
            return "\n".join(self.text.rstrip().splitlines()[-lines:])


class Vm:
    """``with Vm(spec, console_log) as vm: vm.boot(); vm.run([...])``"""

    def __init__(self, spec: VmSpec, console_log: Path):
        self.spec = spec
        self.console_log = console_log
        self.child: pexpect.spawn | None = None
        self.console: Console | None = None
        self.ssh: paramiko.SSHClient | None = None
        self.port = 0
        self.started = 0.0
        self.exit_status: int | None = None
        self._stopping = threading.Lock()   # stop_all (an interrupted run) races the job

    def __enter__(self) -> "Vm":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- lifecycle --
    def start(self) -> None:
        if _NO_NEW_GUESTS.is_set():
            raise KtoError("kto is stopping: no new guest started")
        self.port = free_port()
        argv = self.spec.argv(self.port)
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.console_log, "ab") as fh:
            fh.write(f"### kto: {shlex.join(argv)}\n".encode())
        self.started = time.monotonic()
        self.child = pexpect.spawn(argv[0], argv[1:], echo=False, preexec_fn=_pdeathsig,
                                   dimensions=(50, 200))
        _LIVE.add(self)
        self.console = Console(self.child, self.console_log)
        if _NO_NEW_GUESTS.is_set():     # stop_all ran between the check above and here
            self.stop()
            raise KtoError("kto is stopping: no new guest started")

    def boot(self, timeout: float = 300, ssh_key: Path | None = None) -> BootResult:
        """Start QEMU and wait until the guest's SSH answers."""
        ready = re.escape(READY_MARK) + r"|Kernel panic|" + re.escape(FAILED_MARK)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.start()
            m = self.console.wait_for(ready + "|" + _HOSTFWD_FAILED, timeout)
            if m is None or m.group(0) != _HOSTFWD_FAILED or attempt == PORT_ATTEMPTS:
                break
            # Another process took the free port between free_port() and QEMU's bind.
            self.stop()
            with open(self.console_log, "ab") as fh:
                fh.write(f"### kto: port {self.port} taken, retrying with another\n".encode())
        if m is not None and m.group(0) == _HOSTFWD_FAILED:
            self.wait_exit(10)
            return BootResult("qemu-exited", time.monotonic() - self.started,
                              f"no free port for SSH after {PORT_ATTEMPTS} tries\n"
                              f"{self.console.tail()}")
        if m is not None and m.group(0) == FAILED_MARK:
            self.stop()
            return BootResult("ssh-refused", time.monotonic() - self.started,
                              f"{FAILED_MARK}\n{self.console.tail()}")
        if m is None or m.group(0) != READY_MARK:
            return self._boot_failure(timeout)
        deadline = self.started + timeout
        key = paramiko.ECDSAKey.from_private_key_file(str(ssh_key))
        from orchestrator.image import host_public_key
        pinned = host_public_key(ssh_key)
        last_err = ""
        while time.monotonic() < deadline and self.alive():
            try:
                client = paramiko.SSHClient()
                # The image carries a host key kto made: anything else on the port is not
                # our guest (another process won the port, or something listens there).
                client.get_host_keys().add(f"[127.0.0.1]:{self.port}", pinned.get_name(), pinned)
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
                client.connect("127.0.0.1", port=self.port, username="root", pkey=key,
                               look_for_keys=False, allow_agent=False, timeout=15,
                               banner_timeout=60, auth_timeout=60)
                self.ssh = client
                return BootResult("ready", time.monotonic() - self.started)
            except paramiko.BadHostKeyException as e:
                client.close()
                self.stop()
                return BootResult("ssh-refused", time.monotonic() - self.started,
                                  f"127.0.0.1:{self.port} answered with host key "
                                  f"{e.key.get_fingerprint().hex()}, not the guest's "
                                  f"{pinned.get_fingerprint().hex()}: refused")
            except (paramiko.SSHException, OSError, EOFError) as e:
                last_err = str(e) or type(e).__name__
                time.sleep(1)
        if not self.alive():
            return self._boot_failure(timeout)
        return BootResult("ssh-refused", time.monotonic() - self.started,
                          f"no SSH on 127.0.0.1:{self.port} within {timeout:.0f}s: {last_err}")

    def _boot_failure(self, timeout: float) -> BootResult:
        seconds = time.monotonic() - self.started
        if self.alive() and not re.search(r"Kernel panic", self.console.text):
            self.stop()
            return BootResult("boot-timeout", seconds,
                              f"no '{READY_MARK}' within {timeout:.0f}s\n{self.console.tail()}")
        self.wait_exit(10)
        panic = re.search(r"Kernel panic - not syncing: ?(.*)", self.console.text)
        if panic:
            return BootResult("panic", seconds, f"Kernel panic: {panic.group(1).strip()}\n"
                              f"{self.console.tail()}")
        return BootResult("qemu-exited", seconds,
                          f"QEMU exited with status {self.exit_status}\n{self.console.tail()}")

    def alive(self) -> bool:
        return self.child is not None and self.child.isalive()

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self.alive() and self.child is not None:
            self.exit_status = self.child.exitstatus if self.child.exitstatus is not None \
                else -(self.child.signalstatus or 0)
        return not self.alive()

    def kill(self) -> None:
        """End QEMU now, from any thread (a crashed kernel, orchestrator/crashwatch.py):
        SSH commands in flight see the guest gone; stop() still cleans up."""
        child = self.child
        # No isalive() here: waitpid from two threads could reap the child under the other.
        if child is not None and not child.terminated:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        with self._stopping:
            if self.ssh:
                try:
                    self.ssh.close()
                except Exception:
                    pass
                self.ssh = None
            if self.child is not None:
                if self.child.isalive():
                    self.child.terminate(force=True)
                try:
                    self.child.wait()
                except pexpect.ExceptionPexpect:
                    pass
                self.wait_exit(0)
                self.child.close(force=True)
            if self.console:
                self.console.thread.join(timeout=5)
            _LIVE.discard(self)

    # -- guest commands --
    def run(self, argv: list[str], timeout: float = 600) -> CommandResult:
        """Run ``argv`` in the guest over SSH (each element shell-quoted)."""
        if self.ssh is None:
            raise KtoError("guest is not booted")
        t0 = time.monotonic()
        try:
            chan = self.ssh.get_transport().open_session()
            chan.exec_command(shlex.join(argv))
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as e:
            # The guest is gone (QEMU killed after a crash, orchestrator/crashwatch.py).
            return CommandResult(argv, None, "", f"connection lost: {e}", 0.0)
        out, err = bytearray(), bytearray()
        deadline = t0 + timeout
        while True:
            if chan.recv_ready():
                out += chan.recv(65536)
                continue
            if chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                continue
            if chan.exit_status_ready():
                break
            if time.monotonic() > deadline or not self.alive():
                chan.close()
                return CommandResult(argv, None, out.decode(errors="replace"),
                                     err.decode(errors="replace"), time.monotonic() - t0,
                                     timed_out=self.alive())
            select.select([chan], [], [], 0.5)
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        code = chan.recv_exit_status()
        chan.close()
        if code == -1 and self.wait_exit(2):
            code = None       # paramiko's "no exit status": the connection went with QEMU
        return CommandResult(argv, code, out.decode(errors="replace"),
                             err.decode(errors="replace"), time.monotonic() - t0)

    def put(self, local: Path, remote: str, mode: int = 0o644, timeout: float = 300) -> None:
        """Upload ``local`` to ``remote`` in the guest with permissions ``mode``.

        Through an exec channel's stdin (dropbear has no SFTP server in the image): a
        fixed script writes a temporary file and renames it into place."""
        if self.ssh is None:
            raise KtoError("guest is not booted")
        chan = self.ssh.get_transport().open_session()
        chan.settimeout(timeout)
        chan.exec_command(shlex.join(["sh", "-c", 'cat > "$1.kto-tmp" && chmod "$2" '
                                      '"$1.kto-tmp" && mv -f "$1.kto-tmp" "$1"', "sh",
                                      remote, f"{mode:o}"]))
        try:
            with open(local, "rb") as fh:
                while chunk := fh.read(1 << 16):
                    chan.sendall(chunk)
            chan.shutdown_write()
            code = chan.recv_exit_status()
            err = b""
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
        except (OSError, socket.timeout, paramiko.SSHException) as e:
            raise KtoError(f"upload of {local.name} to the guest failed: {e}") from None
        finally:
            chan.close()
        if code != 0:
            raise KtoError(f"upload of {local.name} to {remote} failed (exit {code}): "
                           f"{err.decode(errors='replace').strip()}")

    def run_script(self, script: str, timeout: float = 600) -> CommandResult:
        """Run a fixed shell script that ships with kto (never built from config strings)."""
        return self.run(["sh", "-c", script], timeout)


# -- acceleration --

def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def choose_accel(requested: str, arch: Arch, kernel: Path, initrd: Path, ssh_key: Path,
                 progress=print) -> str:
    """'tcg' unless KVM was asked for (or 'auto') and a probe boot shows it really works.

    /dev/kvm can exist and still not boot a kernel (nested PVM here), so existence is not
    enough: boot the real kernel once with a short timeout and remember the verdict for
    this host boot.
    """
    import platform
    if requested == "tcg" or arch.uname != platform.machine() or \
            not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if requested == "kvm":
            raise KtoError(f"accel kvm requested but /dev/kvm is not usable for {arch.name}")
        return "tcg"
    verdict_file = cache.cache_root() / "kvm-probe.json"
    try:
        verdict = json.loads(verdict_file.read_text())
        if verdict.get("boot_id") == _boot_id():
            return "kvm" if verdict["works"] else "tcg"
    except (OSError, ValueError, KeyError):
        pass
    progress("vm: probing KVM with a 30 s test boot")
    log = cache.cache_dir("kvm-probe") / "console.log"
    log.unlink(missing_ok=True)
    with Vm(VmSpec(arch, kernel, initrd, accel="kvm", memory_mb=512), log) as vm:
        works = vm.boot(timeout=30, ssh_key=ssh_key).ok
    cache.atomic_write(verdict_file, json.dumps({"boot_id": _boot_id(), "works": works}))
    progress(f"vm: KVM {'works' if works else 'cannot boot a kernel here: using TCG'}")
    if requested == "kvm" and not works:
        raise KtoError("accel kvm requested but a probe boot with KVM failed (see "
                       f"{log})")
    return "kvm" if works else "tcg"
