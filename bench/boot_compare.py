"""Boot to a shell under TCG: kto vs a bare QEMU command line vs virtme-ng (issue 17, item 4).

    .venv/bin/python bench/boot_compare.py [--boots N] [--build DIR] [--no-levers]

All three boot the same bzImage (the default run's x86_64 kernel from the build store,
see bench/kernel_store.py); kto and the floor also boot the same initramfs (kto's guest
image + the build's modules). Each is timed from starting QEMU (or vng) to the output of
a first shell command in the guest:

- **floor**: ``qemu-system-x86_64 -nographic -m M -smp C -kernel bzImage -initrd I
  -append "console=ttyS0 rdinit=/usr/bin/busybox -- sh"``, a command typed at the prompt;
- **kto**: ``vm.Vm.boot()`` (QEMU as kto starts it, init, dropbear, SSH) + ``Vm.run``;
- **virtme-ng**: ``vng --run bzImage --disable-kvm --exec CMD`` (PyPI ``virtme-ng``,
  installed into the venv by ``make bench``); when it cannot boot this kernel its error
  is recorded instead.

Then the boot-time levers, each a change to kto's QEMU command line or initramfs: CPU
model, TCG threading, guest memory, initramfs compression. Variants run round-robin so
a changing machine load hits all of them alike; the median of N is reported.
Writes bench/out/boot_compare.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from kernel_store import default_build  # noqa: E402
from orchestrator import arch as arch_mod, cache, image, toolchain, vm  # noqa: E402

MARK = "kto-bench-$((6*7))"          # the guest's shell expands it: the output proves a shell ran
MARK_OUT = "kto-bench-42"
INIT_LINE = r"Run \S+ as init process"
TIMEOUT = 300


@dataclasses.dataclass
class Sample:
    seconds: float | None
    detail: str = ""
    kernel: float | None = None     # QEMU start to "Run <init> as init process" on the console
    cpu: float | None = None        # QEMU's CPU seconds (all threads) until the command's output
    ready: float | None = None      # kto: QEMU start to init's "guest ready" (dropbear up)


def qemu_cpu(pid: int) -> float | None:
    """utime + stime of a running process, all threads (less sensitive to the machine's
    load than wall time: TCG time is CPU time)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def watch_init(guest: vm.Vm, found: dict) -> threading.Thread:
    """Note when the kernel hands over to init on ``guest``'s console (a thread: boot()
    blocks)."""
    def run():
        while guest.console is None and not found.get("stop"):
            time.sleep(0.01)
        if guest.console is not None and guest.console.wait_for(INIT_LINE, TIMEOUT):
            found["kernel"] = time.monotonic() - guest.started
            if guest.console.wait_for(re.escape(vm.READY_MARK), TIMEOUT):
                found["ready"] = time.monotonic() - guest.started
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def floor_argv(kernel: Path, initrd: Path, memory: int, cpus: int) -> list[str]:
    return ["qemu-system-x86_64", "-nographic", "-no-reboot", "-m", str(memory),
            "-smp", str(cpus), "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 rdinit=/usr/bin/busybox -- sh"]


def boot_floor(kernel: Path, initrd: Path, memory: int, cpus: int, log: Path) -> Sample:
    argv = floor_argv(kernel, initrd, memory, cpus)
    t0 = time.monotonic()
    child = pexpect.spawn(argv[0], argv[1:], echo=False, timeout=TIMEOUT,
                          preexec_fn=vm._pdeathsig, dimensions=(50, 200))
    child.logfile_read = open(log, "wb")
    try:
        child.expect(INIT_LINE)
        kernel = time.monotonic() - t0
        child.expect(r"/ # ")
        child.sendline(f"echo {MARK}")
        child.expect(MARK_OUT)
        return Sample(time.monotonic() - t0, kernel=kernel, cpu=qemu_cpu(child.pid))
    except (pexpect.TIMEOUT, pexpect.EOF) as e:
        return Sample(None, f"no shell: {type(e).__name__}")
    finally:
        child.terminate(force=True)
        child.close(force=True)
        child.logfile_read.close()


def boot_kto(spec: vm.VmSpec, ssh_key: Path, log: Path) -> Sample:
    with vm.Vm(spec, log) as g:
        found: dict = {}
        watcher = watch_init(g, found)
        r = g.boot(TIMEOUT, ssh_key)
        found["stop"] = True
        if not r.ok:
            return Sample(None, f"{r.outcome}: {r.detail.splitlines()[0] if r.detail else ''}")
        out = g.run(["sh", "-c", f"echo {MARK}"], timeout=60)
        if MARK_OUT not in out.stdout:
            return Sample(None, f"first command failed: {out.exit_code} {out.stderr.strip()}")
        done, cpu = time.monotonic() - g.started, qemu_cpu(g.child.pid)
        watcher.join(1)
        return Sample(done, kernel=found.get("kernel"), cpu=cpu, ready=found.get("ready"))


def vng_path() -> Path | None:
    p = Path(sys.executable).parent / "vng"
    return p if p.exists() else (Path(shutil.which("vng")) if shutil.which("vng") else None)


def boot_vng(kernel: Path, busybox: Path, memory: int, cpus: int, log: Path) -> Sample:
    vng = vng_path()
    if vng is None:
        return Sample(None, "vng not installed (pip install virtme-ng)")
    argv = [str(vng), "--run", str(kernel), "--disable-kvm", "--memory", f"{memory}M",
            "--cpus", str(cpus), "--busybox", str(busybox), "--verbose", "--exec", f"echo {MARK}"]
    # vng runs virtme-run from PATH: the venv's bin must be on it.
    env = {**os.environ, "PATH": f"{vng.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.monotonic()
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            errors="replace", timeout=TIMEOUT, preexec_fn=vm._pdeathsig,
                            env=env)
        out, code = cp.stdout + cp.stderr, cp.returncode
    except subprocess.TimeoutExpired as e:
        out = "".join(x.decode(errors="replace") if isinstance(x, bytes) else x
                      for x in (e.stdout or b"", e.stderr or b""))
        code = None
    wall = time.monotonic() - t0
    log.write_text(f"$ {' '.join(argv)}\n{out}")
    if MARK_OUT in out and code == 0:
        return Sample(wall)
    return Sample(None, f"exit {code} after {wall:.0f}s: {vng_error(out)}")


def vng_error(out: str) -> str:
    """The line that says why vng's guest did not reach a shell."""
    for pat in (r"Kernel panic[^\n]*", r"[^\n]*(?:error|Error|ERROR|failed|cannot|Cannot)[^\n]*",
                r"[^\n]*No such[^\n]*"):
        m = re.search(pat, out)
        if m:
            return m.group(0).strip()[:200]
    tail = out.strip().splitlines()
    return tail[-1][:200] if tail else "no output"


def busybox_from(dest: Path) -> Path:
    """A static busybox for vng's own initramfs: the host has none; kto's guest image
    packages have one."""
    debs = sorted((cache.cache_root() / "debs" / "amd64").glob("busybox-static_*.deb"))
    if not debs:
        raise SystemExit("busybox-static .deb not in the cache: run `kto run default` first")
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(dest)], check=True)
    for cand in ("bin/busybox", "usr/bin/busybox"):
        if (dest / cand).exists():
            return dest / cand
    raise SystemExit(f"{debs[-1].name}: no busybox binary inside")


def compress(src: Path, how: str, dest: Path) -> Path:
    if how == "gzip":
        with open(src, "rb") as i, gzip.open(dest, "wb", compresslevel=6) as o:
            shutil.copyfileobj(i, o)
    else:
        subprocess.run([how, "-q", "-f", str(src), "-o", str(dest)] if how == "zstd"
                       else [how, "-q", "-f", str(src), str(dest)], check=True)
    return dest


def median(samples: list[Sample], what: str = "seconds") -> float | None:
    ok = [getattr(s, what) for s in samples if getattr(s, what) is not None]
    return statistics.median(ok) if ok else None


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boots", type=int, default=3, help="boots per variant (median)")
    ap.add_argument("--build", type=Path, help="kto build store directory (default: the "
                    "newest default run's x86_64 kernel)")
    ap.add_argument("--no-levers", action="store_true", help="only kto, floor and vng")
    args = ap.parse_args()
    build_dir = args.build or default_build()
    a = arch_mod.get("x86_64")
    img = image.build_image(a, toolchain.for_arch(a), lambda m: None)
    kernel = build_dir / "image"
    memory, cpus = 2048, 2           # runs.yaml's default vm settings
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="kto-boot-bench-") as tmp:
        tmp = Path(tmp)
        initrd = image.modules_initramfs(img, build_dir / "modules.cpio", tmp / "initrd.cpio")
        busybox = busybox_from(tmp / "bb")
        spec = vm.VmSpec(a, kernel, initrd, memory_mb=memory, cpus=cpus, accel="tcg")

        variants = {
            "floor": lambda log: boot_floor(kernel, initrd, memory, cpus, log),
            "kto": lambda log: boot_kto(spec, img.ssh_key, log),
            "vng": lambda log: boot_vng(kernel, busybox, memory, cpus, log),
        }
        levers = {}
        if not args.no_levers:
            def with_machine(*machine):
                return dataclasses.replace(spec, arch=dataclasses.replace(a, machine=machine))
            levers = {
                "-cpu qemu64": with_machine("-M", "q35", "-cpu", "qemu64"),
                "-accel tcg,thread=single": dataclasses.replace(spec, accel="tcg,thread=single"),
                "1 CPU": dataclasses.replace(spec, cpus=1),
                "1024 MiB": dataclasses.replace(spec, memory_mb=1024),
                "4096 MiB": dataclasses.replace(spec, memory_mb=4096),
                "initramfs gzip -6": dataclasses.replace(
                    spec, initrd=compress(initrd, "gzip", tmp / "initrd.gz")),
            }
            if shutil.which("zstd"):
                levers["initramfs zstd -3"] = dataclasses.replace(
                    spec, initrd=compress(initrd, "zstd", tmp / "initrd.zst"))
            for name, s in levers.items():
                variants[name] = (lambda log, s=s: boot_kto(s, img.ssh_key, log))

        samples: dict[str, list[Sample]] = {k: [] for k in variants}
        for i in range(args.boots):
            for name, fn in variants.items():
                if name == "vng" and i > 0 and samples["vng"][0].seconds is None:
                    continue      # it cannot boot here: once is enough to say why
                log = tmp / f"{re.sub(r'[^a-z0-9]+', '-', name.lower())}-{i}.log"
                s = fn(log)
                samples[name].append(s)
                print(f"{name} #{i + 1}: {fmt(s.seconds)} s (init at {fmt(s.kernel)} s, "
                      f"CPU {fmt(s.cpu)} s) {s.detail}", flush=True)
                if name == "vng" and i == 0:
                    shutil.copy(log, out / "vng-boot.log")     # what vng printed, for the docs

    floor = median(samples["floor"])
    kto = median(samples["kto"])
    head = (f"Boot to a shell under TCG, x86_64, {time.strftime('%Y-%m-%d')}: QEMU start to "
            f"the output of a first shell command, median of {args.boots}, {memory} MiB, "
            f"{cpus} vCPUs, one run on this machine ({os.cpu_count()} cores).")
    rows = ["| boot | seconds | / floor | kernel to init (s) | init to command (s) "
            "| QEMU CPU s | CPU / floor | note |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    floor_cpu = median(samples["floor"], "cpu")
    for name, label in (("floor", "bare qemu-system-x86_64 (the floor)"),
                        ("kto", "kto (QEMU + init + dropbear + SSH + command)"),
                        ("vng", "virtme-ng `vng --run bzImage --exec`")):
        m, k, c = median(samples[name]), median(samples[name], "kernel"), \
            median(samples[name], "cpu")
        ratio = f"{m / floor:.2f}x" if m and floor else "-"
        cratio = f"{c / floor_cpu:.2f}x" if c and floor_cpu else "-"
        note = "; ".join(sorted({s.detail for s in samples[name] if s.detail}))
        if median(samples[name], "ready"):
            note = (f"init's \"guest ready\" (dropbear up) at {fmt(median(samples[name], 'ready'))}"
                    f" s, SSH + command after it")
        rows.append(f"| {label} | {fmt(m)} | {ratio} | {fmt(k)} | "
                    f"{fmt(m - k) if m and k else '-'} | {fmt(c)} | {cratio} | {note} |")
    text = head + "\n\n" + "\n".join(rows) + "\n\n"
    text += (f"Goal: kto <= 1.2x the floor. Measured: "
             f"{kto / floor:.2f}x.\n" if kto and floor else "Goal: kto <= 1.2x the floor.\n")
    if levers:
        kto_cpu = median(samples["kto"], "cpu")
        text += ("\nBoot-time levers (kto's boot with one change; same round-robin):\n\n"
                 "| variant | seconds | / kto as configured | QEMU CPU s | CPU / kto |\n"
                 "|---|---:|---:|---:|---:|\n"
                 f"| kto as configured (q35, -cpu max, MTTCG, 2 CPUs, 2048 MiB, cpio) "
                 f"| {fmt(kto)} | 1.00x | {fmt(kto_cpu)} | 1.00x |\n")
        for name in levers:
            m, c = median(samples[name]), median(samples[name], "cpu")
            text += (f"| {name} | {fmt(m)} | {f'{m / kto:.2f}x' if m and kto else '-'} | "
                     f"{fmt(c)} | {f'{c / kto_cpu:.2f}x' if c and kto_cpu else '-'} |\n")
    (out / "boot_compare.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
