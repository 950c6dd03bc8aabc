"""Stack frame parsing and guilty-frame extraction (the interpreter for formats.StackFmt)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from orchestrator.report import formats as F


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame.  Immutable: reports with identical stacks share Frame objects."""

    func: str
    offset: int | None = None
    size: int | None = None
    module: str | None = None
    addr: int | None = None  # for PC-only lines, or the [<pc>] printed next to the symbol
    inline: bool = False
    source: str | None = None  # "file:line", filled by symbolize()


# " [<ffffffff8100>] ? func.cold+0x1a/0x40 [mod] file.c:12" and variants; "?" marks
# unreliable frames, which are not part of the trace.
_FRAME_RE = re.compile(
    r"^\s*(?:\[[0-9a-f]{8,}\]\s+)?(?:\[<?(?:0x)?([0-9a-f]+)>?\]\s+){0,2}(\?\s+)?"
    r"([A-Za-z0-9_.$<>:]+?)\+0x([0-9a-f]+)(?:/0x([0-9a-f]+))?"
    r"(?:\s+\[([A-Za-z0-9_\-]+)\])?(?:\s+([^\s\[]+:\d+))?"
)
_INLINE_RE = re.compile(r"^\s*(?:\[[0-9a-f]{8,}\]\s+)?(?:\[<?[0-9a-f]+>?\]\s+)?([A-Za-z0-9_.]+) ([^\s]+:\d+) \[inline\]")
_PC_ONLY_RE = re.compile(r"^\s*\[<(?:0x)?([0-9a-f]{8,})>\]\s*(?:0x[0-9a-f]+)?\s*$")
# arm32: "[<c0>] (func) from [<c0>] (caller)"
_ARM_RE = re.compile(r"^\s*\[<?(?:0x)?([0-9a-f]+)>?\] \(([A-Za-z0-9_.]+)(?:\+0x([0-9a-f]+)/0x([0-9a-f]+))?(?: ([^\s)]+:\d+))?[^)]*\)")


def parse_frame_line(line: str) -> Frame | None:
    """Parse one trace line into a Frame (None for non-frames and unreliable "? " frames)."""
    m = _FRAME_RE.match(line)
    if m:
        if m.group(2) or line.rstrip().endswith("(unreliable)"):
            return None
        return Frame(
            func=m.group(3),
            offset=int(m.group(4), 16),
            size=int(m.group(5), 16) if m.group(5) else None,
            module=m.group(6),
            addr=int(m.group(1), 16) if m.group(1) else None,
            source=m.group(7),
        )
    m = _INLINE_RE.match(line)
    if m:
        return Frame(func=m.group(1), inline=True, source=m.group(2))
    m = _ARM_RE.match(line)
    if m:
        return Frame(func=m.group(2), offset=int(m.group(3), 16) if m.group(3) else None,
                     size=int(m.group(4), 16) if m.group(4) else None, addr=int(m.group(1), 16),
                     source=m.group(5))
    m = _PC_ONLY_RE.match(line)
    if m:
        return Frame(func="", addr=int(m.group(1), 16))
    return None


@lru_cache(maxsize=None)
def _skip_re(extra: tuple[str, ...]) -> re.Pattern:
    if not extra:
        return F.SKIP_RE
    return re.compile(F.SKIP_RE.pattern + "|" + "|".join(f"(?:{p})" for p in extra))


_CXX_RE = re.compile(r"^_Z([0-9]+)")


def _clean(name: str) -> str:
    m = _CXX_RE.match(name)  # minimal C++ demangling: _Z8fakeNameiii -> fakeName
    if m:
        name = name[m.end():m.end() + int(m.group(1))]
    for p in F.STRIP_FRAME_PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


# The skip regexes are long alternations and function names repeat across reports: memoize
# per regex (keyed by id; hashing a compiled pattern hashes its whole program).
_SKIP_MEMO: dict[int, tuple[re.Pattern, dict[str, bool]]] = {}


def _skipped(skip: re.Pattern, name: str) -> bool:
    entry = _SKIP_MEMO.get(id(skip))
    if entry is None or entry[0] is not skip:
        entry = _SKIP_MEMO[id(skip)] = (skip, {})
    memo = entry[1]
    hit = memo.get(name)
    if hit is None:
        if len(memo) >= 1 << 16:
            memo.clear()
        hit = memo[name] = skip.search(name) is not None
    return hit


def _append(frames: list[str], m: re.Match, skip: re.Pattern) -> None:
    for g in m.groups():
        if not g:
            continue
        if not _skipped(skip, _clean(g)):
            frames.append(g)  # raw: extractors anchor on entry names like __sys_*


class _Result:
    __slots__ = ("frame", "corrupted", "trace")

    def __init__(self):
        self.frame: str | None = None
        self.corrupted: str | None = None
        self.trace: tuple[int, int] | None = None  # line range of the first parsed stack


def _run(lines: list[str], parts: tuple, skip: re.Pattern, extractor, res: _Result) -> str | None:
    frames: list[str] = []
    it, n = 0, len(lines)
    nstacks = 0
    pi = 0
    while True:
        if pi == len(parts) or (parts[pi] is F.PARSE_STACK and nstacks > 0):
            if frames:
                key = extractor(frames)
                if key:
                    return key
            if pi == len(parts):
                break
            frames = []
        part = parts[pi]
        if part is F.PARSE_STACK:
            nstacks += 1
            start = it
            before = len(frames)
            seen_frame = False
            nxt = parts[pi + 1] if pi + 1 < len(parts) else None
            while it < n:
                ln = lines[it]
                it += 1
                if F.is_corrupted(ln):
                    # A fault-injection stack is interleaved: it ends this section; the
                    # frames collected before it still count.
                    res.corrupted = "stack is corrupted"
                    if len(frames) == before:
                        return None
                    break
                if F.is_stack_start(ln):
                    # "stack backtrace:\nCPU: ..\nCall Trace:" is one section.
                    if seen_frame or not F.CALL_TRACE.search(ln):
                        break
                    continue
                if nxt is not None and nxt is not F.PARSE_STACK:
                    m = nxt.search(ln)
                    if m:
                        _append(frames, m, skip)
                        pi += 1
                        break
                if ln.rstrip().endswith("(unreliable)"):
                    continue  # powerpc's mark for a guessed frame, like x86's "? "
                for fr in F.FRAME_MATCHERS:
                    m = fr(ln)
                    if m:
                        seen_frame = True
                        _append(frames, m, skip)
                        break
            if len(frames) == before and pi > 0 and parts[pi - 1] is not F.PARSE_STACK and it < n:
                # Anchor matched a section without usable frames: look for the next anchor.
                pi -= 1
                nstacks -= 1
                continue
            if res.trace is None and seen_frame:
                res.trace = (start, it)
        else:
            while it < n:
                ln = lines[it]
                it += 1
                if F.is_corrupted(ln):
                    # A fault-injection stack is interleaved: no frame can be trusted.
                    res.corrupted = "stack is corrupted"
                    return None
                m = part.search(ln)
                if m:
                    _append(frames, m, skip)
                    break
        pi += 1
    return None


def extract_frame(stack: F.StackFmt, lines: list[str]) -> _Result:
    """Find the guilty frame in ``lines`` (report lines from the title line on)."""
    res = _Result()
    skip = _skip_re(stack.skip)
    extractor = EXTRACTORS[stack.extractor]
    res.frame = _run(lines, stack.parts, skip, extractor, res)
    if res.frame is None and stack.parts2:
        res.trace = None
        res.frame = _run(lines, stack.parts2, skip, extractor, res)
    if res.frame is not None:
        res.frame = _clean(res.frame)
    if res.frame is None and res.corrupted is None:
        res.corrupted = "extracted no stack frame"
    return res


def _first(frames: list[str]) -> str | None:
    return frames[0] if frames else None


# Stalls loop somewhere random inside a syscall/work item; blame the function just above the
# generic dispatcher (syscall entry, workqueue, timer, softirq, kthread, idle entry) so the
# same root cause gets one title.  A stack without any of them is not trusted ("corrupted").
_STALL_ANCHORS = re.compile(
    # syscall entry on x86, arm64, arm, riscv, powerpc, s390
    r"^(?:smp_call_function|do_syscall_|do_fast_syscall_|do_int80_syscall|entry_SYSCALL"
    r"|entry_SYSENTER|sysenter_dispatch|tracesys_phase2|ret_fast_syscall|el0_svc|invoke_syscall"
    r"|do_el0_svc|el0t_64_sync|ret_from_syscall|system_call|handle_syscall|do_trap_ecall_u"
    r"|__do_syscall|__s390x_sys_"
    # generic file/socket/ioctl dispatch: the caller names the object
    r"|ioctl$|vfs_ioctl$|do_vfs_ioctl$|__vfs_write$|vfs_write$|__vfs_read$|vfs_read$"
    r"|vfs_writev?$|vfs_readv?$|do_iter_write$|do_iter_read$|do_iter_readv_writev$|__fput$"
    r"|__do_fault$|mmap_region$|do_dentry_open$|nfnetlink_rcv_msg$|rtnetlink_rcv_msg$"
    r"|genl_rcv_msg$|genl_family_rcv_msg|netlink_rcv_skb$|sock_common_setsockopt$"
    r"|sock_common_getsockopt$|sock_sendmsg$|sock_recvmsg$|__sock_sendmsg$|sock_write_iter$"
    r"|sock_read_iter$|(?:compat_)?blkdev_ioctl$"
    # workqueues, kthreads, timers, softirqs, RCU callbacks, network receive
    r"|process_one_work$|worker_thread$|kthread$|ret_from_fork|smpboot_thread_fn$"
    r"|run_ksoftirqd$|call_timer_fn$|expire_timers$|_run_timers$|__run_timers$"
    r"|run_timer_softirq$|hrtimer_run|__hrtimer_run_queues$|tasklet_action_common$"
    r"|tasklet_action$|tasklet_hi_action$|net_rx_action$|_*do_softirq|handle_softirqs$"
    r"|rcu_do_batch$|rcu_core$|rcu_process_callbacks$|__netif_receive_skb_core$"
    r"|netif_receive_skb|process_backlog$|__napi_poll$|napi_poll$|task_work_run$"
    # CPU bring-up and idle entry
    r"|cpu_startup_entry$|start_secondary$|secondary_start_kernel$|rest_init$|start_kernel$"
    r"|kernel_init$)"
)


# Matched on the raw name (cleaning turns __sys_setsockopt into setsockopt): the socket
# option dispatchers hand over to the protocol's handler, like sock_common_setsockopt.
_STALL_RAW_ANCHORS = re.compile(r"^__sys_(?:set|get)sockopt$")


def _stall(frames: list[str]) -> str | None:
    prev = frames[0]
    for f in frames:
        if _STALL_ANCHORS.search(_clean(f)) or _STALL_RAW_ANCHORS.search(f):
            # The IPI target ran too long; the smp_call_function caller is the identity.
            return "smp_call_function" if f.startswith("smp_call_function") else prev
        prev = f
    return None  # no entry point in this stack: try the next one, else "corrupted"


# Hung tasks show victims blocked on a lock; group the common rtnl/RCU cases and skip the
# sleeping primitives to get to the function that waits.
_HANG_ANCHORS = (("rtnl_lock", None), ("synchronize_rcu", "synchronize_rcu"),
                 ("synchronize_srcu", "synchronize_rcu"), ("synchronize_net", "synchronize_rcu"),
                 ("synchronize_sched", "synchronize_rcu"))
_HANG_SKIP = ("sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread", "wait",
              "synchronize", "context_switch", "__switch_to", "cancel_delayed_work", "rcu_barrier")


def _hang(frames: list[str]) -> str | None:
    for f in frames:
        for anchor, repl in _HANG_ANCHORS:
            if anchor in f:
                return repl or f
    for f in frames:
        if not any(s in f for s in _HANG_SKIP):
            return f
    return None


EXTRACTORS = {"first": _first, "stall": _stall, "hang": _hang}


def _precompile() -> None:
    # Build every combined skip regex at import, not inside the first parse() call.
    for oops in F.OOPSES:
        for f in oops.formats:
            if f.stack is not None:
                _skip_re(f.stack.skip)


_precompile()
