"""The guest's SSH endpoint (issue 15, points 12 and 13): the host key is kto's own and
pinned, and a port taken between free_port() and QEMU's bind is retried, not a failure.
No kernel is booted: the guest image's own dropbear (x86_64 .debs) serves the host key,
and QEMU fails on a kernel that is not one after its SSH forward is set up."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from orchestrator import image, vm
from orchestrator.arch import get as get_arch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dropbear(tmp_path_factory):
    """The x86_64 guest image's dropbear, unpacked from its .debs (the session's cache:
    the same downloads the guest image uses) to run on the host."""
    debs = image.fetch_packages(get_arch("x86_64"))
    root = tmp_path_factory.mktemp("dropbear")
    for deb in debs:
        if deb.name.split("_")[0] in ("dropbear-bin", "libtomcrypt1", "libtommath1", "libgmp10"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def serve(root: Path, key: Path, port: int) -> subprocess.Popen:
    libs = ":".join(str(p) for p in root.glob("usr/lib/*-linux-gnu"))
    p = subprocess.Popen([str(root / "usr/sbin/dropbear"), "-r", str(key), "-F", "-E", "-s",
                          "-p", f"127.0.0.1:{port}"], env={**os.environ, "LD_LIBRARY_PATH": libs},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return p
        time.sleep(0.1)
    p.kill()
    raise AssertionError(p.stderr.read())


def connect(port: int, pinned: paramiko.PKey, client_key: paramiko.PKey):
    c = paramiko.SSHClient()
    c.get_host_keys().add(f"[127.0.0.1]:{port}", pinned.get_name(), pinned)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        c.connect("127.0.0.1", port=port, username="root", pkey=client_key, timeout=10,
                  look_for_keys=False, allow_agent=False)
    finally:
        c.close()


def test_guest_host_key_is_kto_s_and_pinned(dropbear, tmp_path, monkeypatch):
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    client = paramiko.ECDSAKey.from_private_key_file(str(image.ssh_key()))
    host = image.host_key()
    pinned = image.host_public_key(image.ssh_key())
    port = vm.free_port()
    server = serve(dropbear, host, port)
    try:
        # Our guest's dropbear presents exactly the pinned key: the handshake passes and
        # only authentication fails (no root account on this host's dropbear).
        with pytest.raises(paramiko.AuthenticationException):
            connect(port, pinned, client)
        # A server with any other host key on the port is refused before authentication.
        stranger = paramiko.ECDSAKey.generate(bits=256)
        with pytest.raises(paramiko.BadHostKeyException):
            connect(port, stranger, client)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    # The image carries it and init starts dropbear with it alone (no -R: no key made on
    # first use, which the host could not know).
    init = (REPO / "orchestrator" / "guest" / "init").read_text()
    assert "dropbear -r /etc/dropbear/kto_host_key" in init and "dropbear -R" not in init
    assert "set_missing_host_key_policy(paramiko.RejectPolicy())" in \
        (REPO / "orchestrator" / "vm.py").read_text()


def test_boot_refuses_an_impostor_on_the_port(dropbear, tmp_path, monkeypatch):
    """vm.Vm.boot's own SSH step against a server with another host key: 'ssh-refused'
    naming the host key, at once (not retried until the boot timeout)."""
    monkeypatch.setenv("KTO_CACHE", str(tmp_path / "cache"))
    key = image.ssh_key()
    image.host_key()
    impostor_key = tmp_path / "impostor"
    impostor_key.write_bytes(image.dropbear_ecdsa_private(paramiko.ECDSAKey.generate(bits=256)))
    port = vm.free_port()
    server = serve(dropbear, impostor_key, port)
    guest = vm.Vm(vm.VmSpec(get_arch("x86_64"), tmp_path / "k", tmp_path / "i"),
                  tmp_path / "console.log")

    class FakeConsole:            # QEMU is not needed for the SSH step
        text = ""

        def wait_for(self, pattern, timeout, start=0):
            import re
            return re.search(pattern, vm.READY_MARK)

    def start():
        guest.port, guest.started, guest.console = port, time.monotonic(), FakeConsole()

    monkeypatch.setattr(guest, "start", start)
    monkeypatch.setattr(guest, "alive", lambda: True)
    monkeypatch.setattr(guest, "stop", lambda: None)
    try:
        t0 = time.monotonic()
        res = guest.boot(timeout=60, ssh_key=key)
        assert res.outcome == "ssh-refused" and "not the guest's" in res.detail, res
        assert time.monotonic() - t0 < 20
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


def test_port_taken_before_qemu_binds_is_retried(tmp_path, monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = [taken.getsockname()[1]]
    calls = []
    real_free_port = vm.free_port

    def racy_free_port():
        # First a port someone else holds; then real free ports (on a busy machine another
        # QEMU may take one of those first too: the retry loop covers that as well).
        calls.append(1)
        return ports.pop(0) if ports else real_free_port()

    monkeypatch.setattr(vm, "free_port", racy_free_port)
    (tmp_path / "bzImage").write_bytes(b"not a kernel")
    (tmp_path / "initrd").write_bytes(b"")
    spec = vm.VmSpec(get_arch("x86_64"), tmp_path / "bzImage", tmp_path / "initrd",
                     memory_mb=256, cpus=1)
    log = tmp_path / "console.log"
    try:
        with vm.Vm(spec, log) as guest:
            res = guest.boot(timeout=30, ssh_key=tmp_path / "unused")
    finally:
        taken.close()
    text = log.read_text(errors="replace")
    assert len(calls) >= 2, text
    assert "taken, retrying with another" in text
    # The second QEMU got past its SSH forward and failed on the non-kernel instead.
    assert res.outcome == "qemu-exited" and "host forwarding" not in res.detail, res
