"""Declarative tables describing Linux kernel oops formats.

Modelled on syzkaller's pkg/report/linux.go: every oops kind has a cheap header substring,
suppressions (lines that contain the header but are not bugs), and a list of formats. A format
has a title regex matched against the report text, a title template and a description of how
to find the guilty frame in the report.  The parser (parser.py) interprets these tables; no
format-specific logic lives in code except the named frame extractors at the bottom.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from re import _constants as re_constants, _parser as re_parser

# Regex building blocks, substituted into the patterns below.
_TEMPLATES = {
    "{{ADDR}}": r"0x[0-9a-f]+",
    "{{PC}}": r"\[<?(?:0x)?[0-9a-f]+>?\]",
    # A frame name followed by ".isra.0"/".cold" style suffix or "+0x..": capture the name.
    "{{FUNC}}": r"([a-zA-Z0-9_]+)(?:\.|\+)",
    "{{SRC}}": r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)",
}


def c(pattern: str, flags: int = 0) -> re.Pattern:
    for k, v in _TEMPLATES.items():
        pattern = pattern.replace(k, v)
    return re.compile(pattern, flags | re.MULTILINE)


# Marker for "parse a stack trace starting here" in StackFmt.parts.
PARSE_STACK = None


@dataclass(frozen=True)
class StackFmt:
    """How to find the guilty frame.

    ``parts`` are matched consecutively against report lines: a regex advances to the first
    line it matches (yielding its capture group as a frame, if any); PARSE_STACK consumes
    frame lines until a new stack section starts.  ``parts2`` is tried when ``parts`` yields
    nothing.  ``skip`` adds to the global SKIP_FRAMES.  ``extractor`` names a function in
    EXTRACTORS that picks the guilty frame from all collected frames.
    """

    parts: tuple
    parts2: tuple = ()
    skip: tuple[str, ...] = ()
    extractor: str = "first"


@dataclass(frozen=True)
class Format:
    title: re.Pattern
    fmt: str  # str.format template; positional args are title groups, then the frame
    stack: StackFmt | None = None
    report: re.Pattern | None = None  # must also match the report text
    corrupted: bool = False  # title alone means the real report was lost
    no_stack: bool = False  # report legitimately has no stack trace
    type: str | None = None


@dataclass(frozen=True)
class Oops:
    header: str  # cheap substring that starts a report
    formats: tuple[Format, ...]
    suppressions: tuple[re.Pattern, ...] = ()
    type: str = "UNKNOWN"
    anchored: bool = False  # header must start the (prefix-stripped) line
    # A follow-up (e.g. "Kernel panic - not syncing: panic_on_warn set") belongs to the
    # report open in the same context rather than starting a new one.
    followup: re.Pattern | None = None
    # One-line reports (e.g. unregister_netdevice) do not end a report printed around them.
    interrupts: bool = True


CALL_TRACE = c(r"(?:Call (?:T|t)race:)|(?:Backtrace:)")
RIP_FRAME = c(
    r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)0x[0-9a-f]+"
    r"|(?:[0-9]+:){{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))"
)
IRQ_SKIP = c(r"(?:apic_timer_interrupt|Exception stack|el1h_64_irq|handle_exception|</IRQ>)")

# Lines that are part of a stack trace: x86/arm64 " func+0x1/0x2", riscv/old x86
# "[<ffffffff81>] func+0x..", arm32 "[<c0>] (func) from [<c0>] (caller)".
FRAME_RES = (
    c(r"^ *(?:{{PC}} ){0,2}{{FUNC}}"),
    # (symbolized arm32 logs add " file.c:123" inside the parentheses)
    c(r"^ *\[<?(?:0x)?[0-9a-f]+>?\] \(([a-zA-Z0-9_]+)[a-zA-Z0-9_.]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: [^)]*)?\) from \[<?(?:0x)?[0-9a-f]+>?\] \(([a-zA-Z0-9_]+)[a-zA-Z0-9_.]*(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: [^)]*)?\)"),
)

# A new stack section starts: stop parsing the current one.
STACK_START_RES = (
    c(r"^ *Call (?:T|t)race:"),
    c(r"Allocated:"),
    c(r"Allocated by task [0-9]+:"),
    c(r"Freed:"),
    c(r"Freed by task [0-9]+:"),
    c(r"Last potentially related work creation:"),
    c(r"Second to last potentially related work creation:"),
    c(r"The buggy address belongs to"),
    c(r"^Memory state around"),
    c(r"Uninit was (?:stored|created)"),
    c(r"^ *-> #[0-9]+"),
    c(r"stack backtrace:"),
    c(r"^ *Backtrace:"),
    c(r"NMI backtrace for cpu"),
    c(r"^kfence-#[0-9]+"),
)

STACK_START_ANY = re.compile("|".join(f"(?:{r.pattern})" for r in STACK_START_RES), re.M)

# Fault-injection stacks interleave with real reports; their presence corrupts the parse.
CORRUPTED_LINES = (c(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? (?:__)?should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),)

# Reporting/allocator/locking/library frames never blamed (matched with re.search).
SKIP_FRAMES = (
    "__sanitizer", "__asan", "kasan", "hwasan", "__msan", "kmsan", "kcsan_setup_watchpoint",
    "check_memory_region", "check_heap_object", "check_object", "read_word_at_a_time",
    r"(read|write)_once_.*nocheck", "print_address_description", "panic", "invalid_op",
    "report_bug", "fixup_bug", "print_report", "print_usage_bug", "do_error", "invalid_op",
    r"_trap$|do_trap", "show_stack", "dump_stack", "walk_stack", "dump_backtrace",
    "warn_slowpath", "warn_alloc", "warn_bogus", "__warn", "alloc_page", r"k?v?(?:m|z|c)alloc",
    "krealloc", "kmem_cache", "allocate_slab", r"folio_(?:alloc|unlock)", "filemap_alloc_folio",
    "__filemap_get_folio", "find_or_create_page", "do_read_cache_folio", "read_cache_page",
    "pagecache_get_page", "grab_cache_page_write_begin", "slab_", "debug_object",
    "timer_is_static_object", "work_is_static_object", "__might_fault", "print_unlock",
    "imbalance_bug", "lockdep", "bh_enable", "bh_disable", "perf_trace", "lock_acquire",
    "lock_release", "lock_class", "mark_lock", r"(reacquire|mark)_held_locks", "raw_spin_rq",
    "spin_lock", "spin_trylock", "spin_unlock", "read_lock", "read_trylock", "write_lock",
    "write_trylock", "read_unlock", "write_unlock", "^down$", "down_read", "down_write",
    "down_read_trylock", "down_write_trylock", "down_trylock", "up_read", "up_write",
    "^mutex_", "^__mutex_", "^rt_mutex_", "owner_on_cpu", "osq_lock", "osq_unlock",
    r"atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    r"(set|clear|change|test)_bit", "__wake_up", "^memcpy", "^memcmp", "^memset", "^memchr",
    "^skb_put", "_copy_from_user", "_copy_to_user", "copy_user_enhanced_fast_string",
    "copy_user_generic", "rep_movs_alternative", "_copy_from_iter", "copy_from_kernel_nofault",
    "kfree_skb", "kfree_rcu", "refcount_", "^__list_", "^list_(?:add|del)",
    "__rcu_read_(lock|unlock)", "debug_lockdep_rcu_enabled", "^check_preemption_disabled",
    "^__this_cpu_preempt_check", "fault_in_pages", "__might_sleep", "__might_resched",
    "^___might_sleep", "^__schedule_bug", "trace_hardirqs", "^preempt_count_",
    "^rcu_lockdep_current_cpu_online", "^lockdep_rcu_suspicious", "^_?raw_", "^do_raw_",
    "^print_", "^___slab_alloc", "^__slab_", "^ubsan_", "^__ubsan", "^handle_overflow",
    "^check_copy_size", "^__check_object_size", "^usercopy_", "^copy_overflow",
    "^__copy_overflow", "^debug_check_no", "^report_", "^kfence_", "^__kfence_",
    "^arch_local_irq", "^native_irq", "^queued_(spin|read|write)_lock", "^__pv_queued",
    "^pv_queued", "^stack_trace_", "^arch_stack_walk", "^__stack_chk", "queue_work", "^crc",
    "hex_dump", "fortify_", "^ref_tracker", "^__x86_indirect_thunk", "^__hwasan",
    "^__raw_(?:read|write)", r"^logic_(?:in|out)",
    # Library families: the caller, not the helper, is the bug.
    r"^_*mem(?:cpy|move|set|cmp|chr|scan|dup)",  # lib/string.c and arch memory ops
    r"^_*str(?:n?cpy|n?cmp|n?casecmp|n?cat|l?cat|nlen|len|lcpy|scpy|chr|rchr|nchr|n?str|sep|spn"
    r"|cspn|pbrk|dup|ndup)",
    r"^k(?:str|mem)n?dup",
    # lib/vsprintf.c and seq_file printing: the format string comes from the caller.
    r"^(?:v?sn?printf|v?scnprintf|vsprintf|bstr_printf|format_decode|string|string_nocheck"
    r"|hex_string|widen_string|pointer|number|restricted_pointer|dentry_name|bdev_name"
    r"|ip[46]?_(?:addr_)?string|k?v?asprintf|seq_v?printf|seq_puts|seq_putc)$",
    r"^_*(?:get|put)_user(?:_nocheck)?(?:_[0-9]+)?$",  # uaccess accessors
    r"^strn(?:cpy|len)_from_user$|^_*(?:clear|copy_in)_user",
    # Driver-model object lifetime: kobject/kref/klist/sysfs/devres/PM teardown.
    "kobject_", "kref_put", "^klist_", "^sysfs_remove", "^devres_release", "^dpm_sysfs_remove",
    r"^_*(?:put_device|device_(?:del|destroy|unregister|release|remove|for_each_child|links_))",
    # usb_kill_urb, usb_kill_anchored_urbs and the synchronous message helpers submit or
    # wait for URBs on behalf of the driver that called them.
    r"^usb_kill_|^usb_(?:start_wait_urb|control_msg|bulk_msg|interrupt_msg)$",
    # Core data structures of lib/: rbtree, xarray/IDR/IDA, rhashtable.
    r"^_*rb_(?:insert|erase|first|last|next|prev|replace|link)",
    r"^_*xa_|^xas_|^ida_(?:alloc|free|destroy)|^idr_(?:alloc|remove|find|destroy|get_next)",
    "^_*rhashtable_|^rht_",
    # dcache/inode reference and link counts dropped on behalf of the caller.
    r"^_*(?:dput|dentry_kill)$", r"^(?:drop|clear|inc|set)_nlink$",
    r"^(?:kv|v|k)free(?:_sensitive)?$", "^cleanup_srcu_struct",
    # Wait queues and kthread/workqueue/timer synchronisation: callers wait for their work.
    r"^(?:prepare_to_wait|finish_wait|__wake_up)",
    r"^kthread_(?:stop|park)",
    r"^(?:lock_timer_base|__try_to_del_timer_sync|__timer_delete_sync|timer_delete_sync"
    r"|del_timer(?:_sync)?|__mod_timer|mod_timer|try_to_grab_pending|__cancel_work_timer"
    r"|__cancel_work|cancel_work_sync|cancel_delayed_work_sync|__flush_work|flush_work"
    r"|sk_stop_timer(?:_sync)?|sk_reset_timer|complete)$",
    # Subsystem unregistration helpers that run the caller's teardown.
    r"^(?:tty_unregister_device|hwrng_unregister|i2c_del_adapter|__unregister_client"
    r"|rollback_registered_many|unregister_netdevice_many)",
    # Fault/exception plumbing between the faulting instruction and its function.
    r"^(?:__do_kernel_fault|do_tag_check_fault|do_mem_abort|do_bad_area|do_translation_fault"
    r"|do_page_fault|__do_page_fault|page_fault|exc_page_fault|asm_exc_page_fault"
    r"|handle_page_fault|do_user_addr_fault|kernelmode_fixup_or_oops|bad_area_nosemaphore"
    r"|__bad_area_nosemaphore|no_context|el1_abort|el1_da|el1_sync|el1_sync_handler"
    r"|el1h_64_sync|el1h_64_sync_handler|do_sea|die|__die|oops_end|arm64_notify_die)$",
)
CORRUPTED_ANY = re.compile("|".join(f"(?:{r.pattern})" for r in CORRUPTED_LINES), re.M)


def _anchored(pattern: re.Pattern) -> bool:
    """The pattern can only match at the start of a line (its top level begins with ^)."""
    parsed = re_parser.parse(pattern.pattern, pattern.flags)
    return bool(len(parsed.data)) and parsed.data[0][0] is re_constants.AT and parsed.data[0][1] in (
        re_constants.AT_BEGINNING, re_constants.AT_BEGINNING_LINE)


def line_matcher(patterns) -> "Callable[[str], re.Match | None]":
    """``line -> match or None``, like searching each of ``patterns`` in a single line (no
    newline), but faster: ^-anchored patterns are tried only at the line start (``match``),
    and only the others are searched, as one alternation."""
    anchored = [p for p in patterns if _anchored(p)]
    others = [p for p in patterns if not _anchored(p)]

    def combine(ps, method):
        if len(ps) == 1:
            return getattr(ps[0], method)
        if len({p.flags for p in ps}) == 1:
            return getattr(re.compile("|".join(f"(?:{p.pattern})" for p in ps), ps[0].flags), method)
        fns = [getattr(p, method) for p in ps]
        return lambda line: next((m for m in (f(line) for f in fns) if m), None)

    a = combine(anchored, "match") if anchored else None
    o = combine(others, "search") if others else None
    if a is None:
        return o
    if o is None:
        return a
    return lambda line: a(line) or o(line)


# Per-line versions of STACK_START_ANY.search, CORRUPTED_ANY.search, FRAME_RES searches.
is_stack_start = line_matcher(STACK_START_RES)
is_corrupted = line_matcher(CORRUPTED_LINES)
FRAME_MATCHERS = tuple(line_matcher((r,)) for r in FRAME_RES)
SKIP_RE = re.compile("|".join(f"(?:{p})" for p in SKIP_FRAMES))

# Frame prefixes stripped so syscall entry points read "sys_foo"/"foo" like syzbot titles.
STRIP_FRAME_PREFIXES = (
    "SYSC_", "SyS_", "__x64_", "__ia32_", "__arm64_", "__riscv_", "____sys_", "___sys_",
    "__sys_", "__se_sys_", "__se_", "__do_sys_", "compat_SyS_", "compat_sys_", "ksys_",
)


def kasan_stack(*skip: str) -> StackFmt:
    # The function named in the header comes first, then the trace (both minus skips).
    return StackFmt(
        parts=(c(r"BUG: (?:KASAN|KFENCE): [a-z\- ]+ in {{FUNC}}"), CALL_TRACE, PARSE_STACK),
        parts2=(CALL_TRACE, PARSE_STACK),
        # arm64 tag-check/fault entry frames sit between the access and its function.
        skip=("slab_", "kfree", "vunmap", "vfree", r"^el1h?_", "mem_abort", "tag_check",
              "kernel_fault") + skip,
    )


def kfence_stack(*skip: str) -> StackFmt:
    # KFENCE prints the stack right after the title (no "Call Trace:").
    return StackFmt(
        parts=(c(r"BUG: KFENCE: [a-z\- ]+ in {{FUNC}}"), PARSE_STACK),
        parts2=(CALL_TRACE, PARSE_STACK),
        skip=kasan_stack().skip + ("kfence",) + skip,
    )


def warning_stack(*skip: str) -> StackFmt:
    # Newer kernels trap on WARN and the stack of interest starts at RIP/pc; older ones
    # print the stack from __warn onwards.
    return StackFmt(
        # powerpc prints the trapping function as "--- interrupt: 700 at FUNC" in the trace.
        parts=(c(r"(?:RIP: (?:[0-9]+:)?|NIP:? |pc : |epc : |--- interrupt: [0-9a-f]+ at )(?:{{PC}} +)?{{FUNC}}"),
               PARSE_STACK),
        parts2=(CALL_TRACE, PARSE_STACK),
        skip=skip,
    )


def fault_stack(*skip: str) -> StackFmt:
    return StackFmt(
        parts=(RIP_FRAME, CALL_TRACE, PARSE_STACK),
        parts2=(CALL_TRACE, PARSE_STACK),
        skip=skip,
    )


STALL_STACK = StackFmt(
    parts=(IRQ_SKIP, RIP_FRAME, PARSE_STACK),
    parts2=(IRQ_SKIP, PARSE_STACK),
    skip=("apic_timer_interrupt", "rcu", "write_comp_data", "__sanitizer_cov", "^sysvec_", "^asm_sysvec_", "^el1_interrupt",
          "^el1h_64_irq", "^handle_exception"),
    extractor="stall",
)
CALL_STACK = StackFmt(parts=(CALL_TRACE, PARSE_STACK))
LOCKDEP_STACK = StackFmt(
    parts=(c(r"stack backtrace:"), PARSE_STACK),
    skip=("lockdep", "lock_", "print_", "check_", "validate_chain", "mark_", "__lock_acquire",
          "spin_", "mutex_", "down_", "up_"),
)


AT_FUNC = c(r"at: (?:{{PC}} +)?{{FUNC}}")
KMSAN_INFOLEAK_SKIP = (r"copy_to_user", r"copyout", r"_?copy_to_iter", r"copy_page_to_iter",
                       r"^instrument_", r"^_?copy_mc_to", r"^simple_read_from_buffer$", r"^iterate_",
                       r"^seq_read", r"^copy_fpstate_to_sigframe")
# kmemleak backtraces start in the allocator: skip allocation wrappers of every kind
# (slab, vmalloc, percpu, IDR, string duplication and printf-allocating helpers).
LEAK_SKIP = ("kmemleak", "mmap_region", "vm_area_alloc", "vm_area_dup", "__alloc", "alloc_", "_alloc",
             "kmalloc", "kzalloc", "kcalloc", "kstrdup", "kmemdup", "strndup", "memdup", "__kmalloc",
             "kmem_cache", "new_", "create_object", r"k?v?asprintf", r"^idr_get", r"^idr_alloc",
             r"^pcpu_create", r"^pcpu_alloc", r"alloc_percpu", "krealloc", r"^__do_kmalloc",
             r"^kvmalloc", r"^kvzalloc", r"^vmalloc", r"^vzalloc", r"^__vmalloc")
LOCKDEP_SKIP = ("lock_acquire", "lock_release", "lock_class", "lockdep", "mark_lock",
                "__lock_acquire", "validate_chain", "check_prev", "check_irq_usage")


def lockdep_formats(prefix: str) -> tuple[Format, ...]:
    """Lockdep banners (WARNING: in new kernels, INFO: in old ones) blame the lock site."""
    # A workqueue flush/drain/destroy or the worker itself is where the cycle closes, not
    # the code that caused it.
    at2 = StackFmt(parts=(AT_FUNC, AT_FUNC, PARSE_STACK), skip=LOCKDEP_SKIP + (
        "process_one_work", "flush_workqueue", "drain_workqueue", "destroy_workqueue",
        r"^(?:worker_thread|_*flush_work|start_flush_work|touch_wq_lockdep_map|touch_work_lockdep_map)$"))
    return (
        Format(c(prefix + r": possible circular locking dependency detected"), "possible deadlock in {0}",
               at2, report=c(r"possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock"),
               type="LOCKDEP"),
        Format(c(prefix + r": possible circular locking dependency detected"),
               "WARNING: possible circular locking dependency detected", corrupted=True, type="WARNING"),
        Format(c(prefix + r": possible recursive locking detected"), "possible deadlock in {0}", at2,
               type="LOCKDEP"),
        Format(c(prefix + r": possible irq lock inversion dependency detected"), "possible deadlock in {0}",
               StackFmt(parts=(AT_FUNC, PARSE_STACK), skip=LOCKDEP_SKIP), type="LOCKDEP"),
        Format(c(prefix + r": .*-safe -> .*-unsafe lock order detected"), "possible deadlock in {0}",
               StackFmt(parts=(c(r"which became .*-irq-safe at:"), PARSE_STACK),
                        parts2=(AT_FUNC, PARSE_STACK), skip=LOCKDEP_SKIP), type="LOCKDEP"),
        Format(c(prefix + r": inconsistent lock state"), "inconsistent lock state in {0}",
               StackFmt(parts=(c(r"takes:"), AT_FUNC, PARSE_STACK), skip=LOCKDEP_SKIP), type="LOCKDEP"),
    )



def lockdep_misc(prefix: str) -> tuple[Format, ...]:
    unlock = StackFmt(parts=(c(r"is trying to release lock"), c(r"^ *(?:{{PC}} +)?{{FUNC}}"), PARSE_STACK),
                      skip=LOCKDEP_SKIP)
    return (
        Format(c(prefix + r": bad unlock balance detected!"), prefix + ": bad unlock balance in {0}",
               unlock, type="LOCKDEP"),
        Format(c(prefix + r": held lock freed!"), prefix + ": held lock freed in {0}",
               StackFmt(parts=(c(r"is freeing memory"), AT_FUNC, PARSE_STACK), skip=LOCKDEP_SKIP),
               type="LOCKDEP"),
        Format(c(prefix + r": .* still has locks held!"), prefix + ": still has locks held in {0}",
               StackFmt(parts=(AT_FUNC, PARSE_STACK), parts2=(CALL_TRACE, PARSE_STACK), skip=LOCKDEP_SKIP),
               type="LOCKDEP"),
        Format(c(prefix + r": lock held when returning to user space"),
               prefix + ": lock held when returning to user space in {0}",
               StackFmt(parts=(AT_FUNC,)), no_stack=True, type="LOCKDEP"),
        Format(c(prefix + r": Nested lock was not taken"), "WARNING: nested lock was not taken in {0}",
               StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=LOCKDEP_SKIP), type="LOCKDEP"),
        Format(c(prefix + r": Invalid wait context"), "WARNING: locking bug in {0}",
               StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=LOCKDEP_SKIP), type="LOCKDEP"),
    )


OOPSES: tuple[Oops, ...] = (
    Oops(
        "BUG:",
        (
            Format(c(r"BUG: KASAN: double-free or invalid-free in {{FUNC}}"),
                   "KASAN: invalid-free in {1}", kasan_stack(), type="KASAN-INVALID-FREE"),
            Format(c(r"BUG: KASAN: (double-free|invalid-free) in {{FUNC}}"),
                   "KASAN: {0} in {2}", kasan_stack(), type="KASAN-INVALID-FREE"),
            Format(c(r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}.*\n(?:.*\n){0,4}?.*(Read|Write) (?:of size|at addr) [0-9a-f]+"),
                   "KASAN: {0} {2} in {3}", kasan_stack()),
            Format(c(r"BUG: KASAN: ([a-z\-]+) on address.*\n(?:.*\n){0,4}?.*(Read|Write) of size ([0-9]+)"),
                   "KASAN: {0} {1} of size {2}", no_stack=True),
            # Old/truncated reports without the access line: keep the raw header.
            Format(c(r"BUG: KASAN: (.*)"), "KASAN: {0}", corrupted=True),
            Format(c(r"BUG: KFENCE: (use-after-free|out-of-bounds) ([a-z\-]+) in {{FUNC}}"),
                   "KFENCE: {0} {1} in {3}", kfence_stack()),
            Format(c(r"BUG: KFENCE: (memory corruption|invalid free|invalid (?:read|write)) in {{FUNC}}"),
                   "KFENCE: {0} in {2}", kfence_stack()),
            Format(c(r"BUG: KMSAN: kernel-usb-infoleak"), "KMSAN: kernel-usb-infoleak in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg"))),
            # KMSAN prints the stack right after the title (no "Call Trace:"), then "Uninit
            # was stored/created at" sections; infoleaks blame the caller of the copy-out.
            Format(c(r"BUG: KMSAN: (kernel-infoleak(?:-after-free)?) in {{FUNC}}"), "KMSAN: {0} in {2}",
                   StackFmt(parts=(PARSE_STACK,), parts2=(CALL_TRACE, PARSE_STACK), skip=KMSAN_INFOLEAK_SKIP)),
            Format(c(r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}"), "KMSAN: {0} in {2}",
                   StackFmt(parts=(PARSE_STACK,), parts2=(CALL_TRACE, PARSE_STACK))),
            Format(c(r"BUG: KCSAN: data-race in {{FUNC}}[^ ]* / {{FUNC}}"),
                   "KCSAN: data-race in {0} / {1}", no_stack=True, type="KCSAN-DATARACE"),
            Format(c(r"BUG: KCSAN: assert: race in {{FUNC}}"), "KCSAN: assert: race in {0}",
                   no_stack=True, type="KCSAN-ASSERT"),
            Format(c(r"BUG: KCSAN: data-race in {{FUNC}}"), "KCSAN: data-race in {0}",
                   no_stack=True, type="KCSAN-DATARACE"),
            Format(c(r"BUG: KCSAN: (.*)"), "KCSAN: {0}", no_stack=True, type="KCSAN-DATARACE"),
            Format(c(r"BUG: unable to handle kernel paging request"),
                   "BUG: unable to handle kernel paging request in {0}", fault_stack(),
                   type="MEMORY_SAFETY_BUG"),
            Format(c(r"BUG: unable to handle (?:kernel )?NULL pointer dereference"),
                   "BUG: unable to handle kernel NULL pointer dereference in {0}", fault_stack(),
                   type="NULL-POINTER-DEREFERENCE"),
            # x86 5.x+ prints "unable to handle page fault for address" plus a
            # "#PF: supervisor ... access" line.
            Format(c(r"BUG: kernel NULL pointer dereference, address:"),
                   "BUG: unable to handle kernel NULL pointer dereference in {0}", fault_stack(),
                   type="NULL-POINTER-DEREFERENCE"),
            Format(c(r"BUG: unable to handle page fault for address(?:.*\n)+?.*#PF: supervisor instruction fetch in kernel mode"),
                   "BUG: unable to handle kernel paging request in {0}", fault_stack(),
                   type="MEMORY_SAFETY_BUG"),
            Format(c(r"BUG: unable to handle page fault for address: 0{8,}[0-9a-f]{1,3}\b"),
                   "BUG: unable to handle kernel NULL pointer dereference in {0}", fault_stack(),
                   type="NULL-POINTER-DEREFERENCE"),
            Format(c(r"BUG: unable to handle page fault for address"),
                   "BUG: unable to handle kernel paging request in {0}", fault_stack(),
                   type="MEMORY_SAFETY_BUG"),
            Format(c(r"BUG: Unable to handle kernel (?:data|instruction) access(?: on (?:read|write))? at (?:0x)?0{8,}[0-9a-f]{1,3}\b"),
                   "BUG: unable to handle kernel NULL pointer dereference in {0}", fault_stack(),
                   type="NULL-POINTER-DEREFERENCE"),
            Format(c(r"BUG: Unable to handle kernel (?:data|instruction) access"),
                   "BUG: unable to handle kernel paging request in {0}", fault_stack(),
                   type="MEMORY_SAFETY_BUG"),
            Format(c(r"BUG: ((?:spinlock|rwlock) (?:lockup suspected|already unlocked|recursion|bad magic|cpu recursion|wrong owner|wrong CPU|trylock failure on UP))"),
                   "BUG: {0} in {1}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK),
                            skip=("spin_", "do_raw_", r"^_?raw_", "spin_bug", "spin_dump", r"rwlock",
                                  r"(?:^|_)(?:read|write)_(?:un)?lock")),
                   type="LOCKDEP"),
            Format(c(r"BUG: soft lockup"), "BUG: soft lockup in {0}",
                   StackFmt(parts=(RIP_FRAME, CALL_TRACE, PARSE_STACK), parts2=(CALL_TRACE, PARSE_STACK),
                            skip=STALL_STACK.skip, extractor="stall"), type="HANG"),
            Format(c(r"BUG: .*still has locks held!"), "BUG: still has locks held in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK)),
                   type="LOCKDEP"),
            Format(c(r"BUG: scheduling while atomic"), "BUG: scheduling while atomic in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("schedule",)), type="ATOMIC_SLEEP"),
            Format(c(r"BUG: lock held when returning to user space"),
                   "BUG: lock held when returning to user space in {0}",
                   StackFmt(parts=(c(r"lock held when returning to user space"), c(r"#[0-9]+: .*, at: {{FUNC}}"))),
                   no_stack=True, type="LOCKDEP"),
            Format(c(r"BUG: (?:sleeping function called from invalid context|might sleep in)"),
                   "BUG: sleeping function called from invalid context in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("might_sleep", "might_fault", "__might")),
                   type="ATOMIC_SLEEP"),
            Format(c(r"BUG: using __this_cpu_([a-z_]+)\(\) in preemptible"),
                   "BUG: using __this_cpu_{0}() in preemptible code in {1}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu_")),
                   type="LOCKDEP"),
            Format(c(r"BUG: using ([a-z_]+)\(\) in preemptible"),
                   "BUG: using {0}() in preemptible code in {1}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu_")),
                   type="LOCKDEP"),
            Format(c(r"BUG: workqueue lockup"), "BUG: workqueue lockup", no_stack=True, type="UNKNOWN"),
            Format(c(r"BUG: workqueue leaked lock or atomic"),
                   "BUG: workqueue leaked lock or atomic in {0}",
                   StackFmt(parts=(c(r".*last function: ([a-zA-Z0-9_]+)"),)), no_stack=True, type="UNKNOWN"),
            # With page_owner the allocation stack names the page's owner.
            Format(c(r"BUG: Bad page state"), "BUG: Bad page state in {0}",
                   StackFmt(parts=(c(r"page last allocated"), PARSE_STACK),
                            skip=(r"^(?:post_alloc_hook|prep_new_page|get_page_from_freelist|_*alloc_pages"
                                  r"|alloc_page|_*folio_alloc|filemap_alloc_folio|__filemap_get_folio"
                                  r"|pagecache_get_page|__page_cache_alloc|page_cache_ra|_*get_free_page)",)),
                   report=c(r"page last allocated"), type="UNKNOWN"),
            Format(c(r"BUG: Bad page state"), "BUG: Bad page state in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("page", "folio", "free_", "put_", "release_", "pcp", "pages", "bad_")),
                   type="UNKNOWN"),
            Format(c(r"BUG: Bad page map"), "BUG: Bad page map", type="UNKNOWN"),
            Format(c(r"BUG: Bad rss-counter state"), "BUG: Bad rss-counter state", no_stack=True),
            Format(c(r"BUG: non-zero nr_ptes on freeing mm"), "BUG: non-zero nr_ptes on freeing mm", no_stack=True),
            Format(c(r"BUG: non-zero pgtables_bytes on freeing mm"), "BUG: non-zero pgtables_bytes on freeing mm", no_stack=True),
            Format(c(r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of"), "BUG: Dentry still in use in {0}", no_stack=True, type="UNKNOWN"),
            Format(c(r"BUG: Dentry .* still in use"), "BUG: Dentry still in use in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("umount_check", "d_walk", "shrink_dcache_for_umount", "do_one_tree", "generic_shutdown_super", "kill_", "deactivate_")), type="UNKNOWN"),
            # Runaway recursion: the top frames are the loop, the entry point names it.
            Format(c(r"BUG: (?:TASK )?stack guard page was hit at"), "BUG: stack guard page was hit in {0}",
                   StackFmt(parts=(RIP_FRAME, CALL_TRACE, PARSE_STACK), extractor="stall"), type="UNKNOWN"),
            Format(c(r"BUG: bad usercopy in"), "BUG: bad usercopy in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("usercopy", "__check")), type="BUG"),
            Format(c(r"BUG: memory leak"), "memory leak in {0}",
                   StackFmt(parts=(c(r"backtrace(?: \(crc [0-9a-f]+\))?:"), PARSE_STACK),
                            skip=LEAK_SKIP),
                   type="LEAK"),
            *lockdep_misc("BUG"),
            Format(c(r"BUG: KFENCE: .*"), "KFENCE: {0}", kfence_stack()),
            Format(c(r"BUG: (.*?)(?: in |$)"), "BUG: {0}", corrupted=True),
        ),
        suppressions=(
            c(r"Spectre V2 : BUG"),  # benign mitigations log
        ),
        type="BUG",
    ),
    Oops(
        "WARNING:",
        (
            # WARN_ON_ONCE(!size) in __vmalloc_node_range: the caller asked for 0 bytes.
            Format(c(r"WARNING: .*mm/vmalloc\.c:[0-9]+ (?:at )?(?:{{PC}} )?__vmalloc_node_range"),
                   "WARNING: zero-size vmalloc in {0}",
                   warning_stack("vmalloc", "vzalloc", "kvmalloc", "kvzalloc", "__vmalloc")),
            Format(c(r"WARNING: (?:.*lib/debugobjects\.c.* (?:debug_print|debug_check)|\S*lib/debugobjects\.c:[0-9]+ at 0x[0-9a-f]+\b)"),
                   "WARNING: ODEBUG bug in {0}",
                   warning_stack("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap", "vfree", "__free_", "debug_check", "kobject_")),
            Format(c(r"WARNING: (?:.*mm/usercopy\.c.* usercopy_warn|\S*mm/usercopy\.c:[0-9]+ at 0x[0-9a-f]+\b)"), "WARNING: bad usercopy in {0}",
                   warning_stack("usercopy", "__check")),
            Format(c(r"WARNING: (?:.*lib/kobject\.c.* kobject_|\S*lib/kobject\.c:[0-9]+ at 0x[0-9a-f]+\b)"), "WARNING: kobject bug in {0}",
                   warning_stack("kobject_")),
            Format(c(r"WARNING: (?:.*fs/proc/generic\.c.* proc_register|\S*fs/proc/generic\.c:[0-9]+ at 0x[0-9a-f]+\b)"),
                   "WARNING: proc registration bug in {0}", warning_stack("proc_")),
            Format(c(r"WARNING: (?:.*lib/refcount\.c.* refcount_|\S*lib/refcount\.c:[0-9]+ at 0x[0-9a-f]+\b)"), "WARNING: refcount bug in {0}",
                   warning_stack("refcount", "kobject_"), type="REFCOUNT_WARNING"),
            Format(c(r"WARNING: (?:.*kernel/locking/lockdep\.c.*lock_|\S*kernel/locking/lockdep\.c:[0-9]+ at 0x[0-9a-f]+\b)"), "WARNING: locking bug in {0}",
                   warning_stack("lockdep_", "lock_", "__lock", "spin_", "mark_", "release_sock")),
            Format(c(r"WARNING: (?:.*mm/(?:slab|slub|slab_common|util)\.c.* _*(?:do_)?(?:k?v?(?:m|z|c|re)alloc|kmem_cache_alloc)|\S*mm/(?:slab|slub|slab_common|util)\.c:[0-9]+ at 0x[0-9a-f]+\b)"),
                   "WARNING: kmalloc bug in {0}",
                   warning_stack("kmalloc", "krealloc", "slab", "kmem", "kvmalloc", "alloc_pages", "kmemdup", "memdup")),
            Format(c(r"WARNING: .* at {{SRC}} (?:{{PC}} )?usb_submit_urb"),
                   "WARNING in {1}/usb_submit_urb",
                   warning_stack("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg")),
            Format(c(r"WARNING: .* at {{SRC}} {{FUNC}}"), "WARNING in {2}", warning_stack()),
            Format(c(r"WARNING: .* at {{SRC}} (?:{{PC}} )?{{FUNC}}"), "WARNING in {2}", warning_stack()),
            Format(c(r"WARNING: .* at {{SRC}}"), "WARNING in {1}", warning_stack()),
            # Newer kernels: "WARNING: file.c:12 at func+0x1/0x2, CPU#0: comm/1" (or "at 0x0").
            Format(c(r"WARNING: {{SRC}} at "), "WARNING in {1}", warning_stack()),
            Format(c(r"WARNING: .*\n.*\n\s*(?:CPU:|Modules linked)"), "WARNING in {0}", warning_stack(), corrupted=False),
            *lockdep_formats("WARNING"),
            Format(c(r"WARNING: suspicious RCU usage"), "WARNING: suspicious RCU usage in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK),
                            skip=("rcu", "kmem_cache", "lockdep_", "debug_", "rcu_read_lock_", "__might")),
                   type="LOCKDEP"),
            Format(c(r"WARNING: kernel stack regs at .* has bad '[a-z]+' value"),
                   "WARNING: kernel stack regs has bad value", no_stack=True, type="UNKNOWN"),
            Format(c(r"WARNING: kernel stack regs at .* has bad value"),
                   "WARNING: kernel stack regs has bad value", no_stack=True, type="UNKNOWN"),
            Format(c(r"WARNING: kernel stack frame pointer at .* has bad value"),
                   "WARNING: kernel stack regs has bad value", no_stack=True, type="UNKNOWN"),
            *lockdep_misc("WARNING"),
            Format(c(r"WARNING: (?:CPU: [0-9]+ PID: [0-9]+ )?at .* (\S+)"), "WARNING in {0}", warning_stack()),
            Format(c(r"WARNING: ([^\n]*)"), "WARNING: {0}", no_stack=True, corrupted=False),
        ),
        suppressions=(
            c(r"WARNING: /etc/ssh/moduli does not exist, using fixed modulus"),
            c(r"(?i)WARNING: .*uses deprecated v2 capabilities"),
            c(r"Spectre V2 : WARNING"),
            c(r"\(loop[0-9]+\): WARNING:"),  # fs messages about corrupted images
            c(r"XFS \(.*\): WARNING"),
            # Boot/runtime notices printed with a "WARNING:" prefix that are not WARN()s.
            c(r"WARNING: workqueue cpumask: online intersect > possible intersect"),
            c(r"WARNING: [Tt]he mand mount option"),
            c(r"WARNING: Unsupported flag value\(s\) of 0x[0-9a-f]+ in DT_FLAGS_1"),
            c(r"WARNING: Unprivileged eBPF is enabled"),
            c(r"WARNING: fbcon: Driver '.*' missed to adjust virtual screen size"),
            c(r"WARNING: See https.* for mitigation options"),
            c(r"WARNING: kernel not compiled with CPU_SRSO"),
            c(r"EXT4-[Ff][Ss](?: \(.*\))?:.*WARNING"),
            c(r"(?i)warning: .* uses wireless extensions"),
        ),
        type="WARNING",
    ),
    Oops(
        "INFO:",
        (
            *lockdep_formats("INFO"),
            Format(c(r"INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall"),
                   "INFO: rcu detected stall in {0}", STALL_STACK, type="HANG"),
            Format(c(r"INFO: rcu_(?:preempt|sched|bh) detected stalls"),
                   "INFO: rcu detected stall in {0}", STALL_STACK, type="HANG"),
            Format(c(r"INFO: trying to register non-static key"), "INFO: trying to register non-static key in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("stack", "lock", "IRQ")), type="UNKNOWN"),
            Format(c(r"INFO: suspicious RCU usage"), "INFO: suspicious RCU usage in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("rcu", "kmem_cache")), type="UNKNOWN"),
            Format(c(r"INFO: task .* blocked (?:in I/O wait )?for more than [0-9]+ seconds"), "INFO: task hung in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), extractor="hang"), type="HANG"),
            Format(c(r"INFO: task .* can't die for more than [0-9]+ seconds"), "INFO: task can't die in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("schedule", "_lock", "wait", "completion")), type="HANG"),
            # Old task hung reports without a stack start with the same header.
            Format(c(r"INFO: (.*)"), "INFO: {0}", corrupted=True),
        ),
        suppressions=(
            c(r"INFO: lockdep is turned off"),
            c(r"INFO: Stall ended before state dump start"),
            c(r"INFO: NMI handler .* took too long to run"),
            c(r"_INFO::"),  # Android camera driver log lines
            c(r"INFO: recovery required on readonly filesystem"),
            c(r"(?:ext4|EXT4-fs).*INFO:"),
            c(r"INFO: NMI handler"),
        ),
        type="UNKNOWN",
    ),
    Oops(
        "Unable to handle kernel",
        (
            Format(c(r"Unable to handle kernel NULL pointer dereference"),
                   "BUG: unable to handle kernel NULL pointer dereference in {0}", fault_stack(),
                   type="NULL-POINTER-DEREFERENCE"),
            Format(c(r"Unable to handle kernel (?:paging request|access to user memory|execute from non-executable memory|read from unreadable memory|write to read-only memory)"),
                   "BUG: unable to handle kernel paging request in {0}", fault_stack(),
                   type="MEMORY_SAFETY_BUG"),
        ),
        suppressions=(c(r"Unable to handle kernel paging request at virtual address .* in process"),),
        type="MEMORY_SAFETY_BUG",
    ),
    Oops(
        "general protection fault",
        (
            Format(c(r"general protection fault(?:.|\n)*?(?:RIP: [0-9]+:|RIP:)"),
                   "general protection fault in {0}", fault_stack(), type="DoS"),
            Format(c(r"general protection fault"), "general protection fault in {0}", fault_stack(),
                   type="DoS"),
        ),
        suppressions=(c(r"general protection fault .* error:\d+ in "),  # user-space trap log
                      c(r"traps: .* general protection fault")),
        type="DoS",
    ),
    Oops(
        "stack segment",
        (Format(c(r"stack segment: "), "stack segment fault in {0}", fault_stack(), type="DoS"),),
        suppressions=(c(r"traps: .* stack segment"),),
        type="DoS",
    ),
    Oops(
        "Kernel panic",
        (
            Format(c(r"Kernel panic - not syncing: Attempted to kill init!"), "kernel panic: Attempted to kill init!", no_stack=True),
            Format(c(r"Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+"),
                   "kernel panic: Couldn't open N_TTY ldisc", no_stack=True),
            # Printed after a BUG/Oops: capturing it as the title means the real report got lost.
            Format(c(r"Kernel panic - not syncing: Fatal exception"), "kernel panic: Fatal exception", corrupted=True, no_stack=True),
            Format(c(r"Kernel panic - not syncing: panic_on_warn set"), "kernel panic: panic_on_warn set", corrupted=True, no_stack=True),
            Format(c(r"Kernel panic - not syncing: hung_task: blocked tasks"), "kernel panic: hung_task: blocked tasks", corrupted=True, no_stack=True),
            # No symbol for the return address: the stack names the function.
            Format(c(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: (?:0x)?[0-9a-f]{6,}\b"),
                   "kernel panic: stack is corrupted in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("stack_chk",))),
            Format(c(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}"),
                   "kernel panic: stack is corrupted in {0}", no_stack=True),
            Format(c(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: ([a-zA-Z0-9_]+)"),
                   "kernel panic: stack is corrupted in {0}", no_stack=True),
            Format(c(r"Kernel panic - not syncing: corrupted stack end detected inside scheduler"),
                   "kernel panic: corrupted stack end in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("schedule", "retint_kernel"), extractor="stall")),
            Format(c(r"Kernel panic - not syncing: kernel stack overflow"), "kernel stack overflow in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("bad_stack",), extractor="stall")),
            Format(c(r"Kernel panic - not syncing: (.*)"), "kernel panic: {0}", no_stack=True),
        ),
        followup=c(r"Kernel panic - not syncing: .*(?:panic_on_warn set|Fatal exception|hung_task: blocked tasks|Attempted to kill init|softlockup|hard LOCKUP|RCU Stall|panic_on_oops|Oops|Fatal)"),
        type="DoS",
        interrupts=False,  # printed inside or after another report: never ends it
    ),
    Oops(
        "PANIC: double fault",
        (Format(c(r"PANIC: double fault"), "PANIC: double fault in {0}",
                StackFmt(parts=(RIP_FRAME,))),),
        type="DoS",
        interrupts=False,  # printed inside or after another report: never ends it
    ),
    Oops(
        "kernel BUG",
        (
            Format(c(r"kernel BUG at mm/usercopy\.c"), "BUG: bad usercopy in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("usercopy", "__check")), type="BUG"),
            Format(c(r"kernel BUG at lib/list_debug\.c"), "BUG: corrupted list in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK)), type="BUG"),
            # skb_over_panic & co: the skb helper that checked is not the bug.
            Format(c(r"kernel BUG at (?:.*)"), "kernel BUG in {0}", fault_stack("skb_"), type="BUG"),
        ),
        type="BUG",
    ),
    Oops(
        "Kernel BUG",
        (Format(c(r"Kernel BUG (.*)"), "kernel BUG {0}", no_stack=True),),
        type="BUG",
    ),
    Oops(
        "BUG kmalloc-",
        (Format(c(r"BUG kmalloc-.*: Object already free"), "BUG: Object already free", no_stack=True),),
        type="DoS",
    ),
    Oops(
        "divide error:",
        (Format(c(r"divide error: "), "divide error in {0}", StackFmt(parts=(RIP_FRAME,))),),
        type="DoS",
    ),
    Oops(
        "divide_error:",
        (Format(c(r"divide_error: "), "divide error in {0}", StackFmt(parts=(RIP_FRAME,))),),
        type="DoS",
    ),
    Oops(
        "int3: ",  # x86 breakpoint trap in the kernel (e.g. a stray INT3 from text patching)
        (Format(c(r"int3: [0-9a-f]+ \[#[0-9]+\]"), "int3 in {0}", StackFmt(parts=(RIP_FRAME,))),),
        suppressions=(c(r"traps: .* int3"),),
        type="DoS",
    ),
    Oops(
        "invalid opcode:",
        (Format(c(r"invalid opcode: "), "invalid opcode in {0}", StackFmt(parts=(RIP_FRAME,))),),
        type="DoS",
        interrupts=False,  # printed inside or after another report: never ends it
    ),
    Oops(
        "UBSAN:",
        (
            Format(c(r"UBSAN: Undefined behaviour in"), "UBSAN: undefined-behaviour in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("ubsan", "overflow"))),
            Format(c(r"UBSAN: array-index-out-of-bounds in"), "UBSAN: array-index-out-of-bounds in {0}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("ubsan", "overflow")),
                   type="MEMORY_SAFETY_UBSAN"),
            Format(c(r"UBSAN: ([a-zA-Z -]+) in"), "UBSAN: {0} in {1}",
                   StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("ubsan", "overflow"))),
        ),
        type="UBSAN",
    ),
    Oops(
        "Booting the kernel.",
        (Format(c(r"^Booting the kernel\."), "unexpected kernel reboot", no_stack=True, type="REBOOT"),),
        anchored=True,
        type="REBOOT",
    ),
    Oops(
        "unregister_netdevice: waiting for",
        (Format(c(r"unregister_netdevice: waiting for (?:\w+|.*) to become free"),
                "unregister_netdevice: waiting for DEV to become free", no_stack=True),),
        type="DoS",
        interrupts=False,
    ),
    Oops(
        "trusty: panic",
        (Format(c(r"trusty: panic.* ASSERT FAILED.*: (.*)"), "trusty: ASSERT FAILED: {0}", no_stack=True),
         Format(c(r"trusty: panic"), "trusty: panic", no_stack=True)),
        type="DoS",
    ),
    Oops(
        "Internal error:",
        (Format(c(r"Internal error:"), "Internal error in {0}", fault_stack()),),
        type="DoS",
        interrupts=False,  # printed inside or after another report: never ends it
    ),
    Oops(
        "unreferenced object",
        (Format(c(r"unreferenced object {{ADDR}} \(size ([0-9]+)\):"), "memory leak in {1}",
                StackFmt(parts=(c(r"backtrace(?: \(crc [0-9a-f]+\))?:"), PARSE_STACK),
                         skip=LEAK_SKIP),
                type="LEAK"),),
        type="LEAK",
    ),
    Oops(
        "Oops",
        (Format(c(r"^Oops: .*\n(?:.*\n)*?.*(?:RIP|pc |PC is at|epc |NIP)"), "Oops in {0}", fault_stack()),
         Format(c(r"^Oops(?:: | \[| -)"), "Oops in {0}", fault_stack())),
        anchored=True,
        type="DoS",
    ),
    Oops(
        "VFS: Busy inodes after unmount",
        (Format(c(r"VFS: Busy inodes after unmount"), "VFS: Busy inodes after unmount (use-after-free)",
                no_stack=True),),
        type="DoS",
    ),
    Oops(
        "VFS: Close: file count is zero",
        (Format(c(r"VFS: Close: file count is zero"), "VFS: Close: file count is zero (use-after-free)", no_stack=True),),
        type="DoS",
    ),
    Oops(
        "VFS: Close: file count is 0",
        (Format(c(r"VFS: Close: file count is 0"), "VFS: Close: file count is zero (use-after-free)", no_stack=True),),
        type="DoS",
    ),
    Oops(
        "KASAN:",
        (Format(c(r"KASAN: ([a-z\-]+) in {{FUNC}}"), "KASAN: {0} in {2}", kasan_stack(), corrupted=True),),
        suppressions=(c(r"kasan: KernelAddressSanitizer"), c(r"KASAN: (?:CONFIG|KernelAddress)")),
        type="KASAN",
    ),
    Oops(
        "SYZFAIL:",
        (Format(c(r"SYZFAIL:(.*)"), "SYZFAIL:{0}", no_stack=True, type="SYZ_FAILURE"),),
        type="SYZ_FAILURE",
    ),
    Oops(
        "SYZFATAL:",
        (Format(c(r"SYZFATAL:(.*)"), "SYZFATAL:{0}", no_stack=True, type="SYZ_FAILURE"),),
        type="SYZ_FAILURE",
    ),
    Oops(
        "fatal error: ",
        (Format(c(r"^fatal error: (?:.*)\n(?:.*\n)*?goroutine [0-9]+"), "go runtime error", no_stack=True),),
        anchored=True,
        type="DoS",
    ),
    Oops(
        "panic: ",
        (Format(c(r"^panic: (?:.*)\n(?:.*\n)*?goroutine [0-9]+"), "go runtime error", no_stack=True),),
        anchored=True,
        type="DoS",
    ),
    Oops(
        "with overflow",
        (Format(c(r"^attempt to (add|subtract|multiply|negate|shift left|shift right) with overflow"),
                "attempt to {0} with overflow in {1}",
                StackFmt(parts=(CALL_TRACE, PARSE_STACK), skip=("panic", "rust_begin_unwind", "core::panicking", "_RNvNtCs", "rust_"))),),
        anchored=True,
        type="UNKNOWN",
    ),
)

# Known benign blocks: (trigger regex on a stripped line, how many following lines belong to
# it at most, regex for lines that continue the block).  The trigger and its continuation lines
# are never treated as reports.
@dataclass(frozen=True)
class Benign:
    name: str
    trigger: re.Pattern
    continuation: re.Pattern  # lines matching this keep the block open
    max_lines: int = 200


BENIGN: tuple[Benign, ...] = (
    # lib/test_vmalloc.c deliberately fails allocations; warn_alloc() prints a WARN-like trace.
    Benign(
        "test_vmalloc expected allocation failure",
        c(r"^(?:test_vmalloc\.sh|k?t?o?-?insmod|kto-insmod|insmod|vmalloc_test/\d+): vmalloc error: size \d+, .*allocation failed"),
        c(r"^(?:CPU: |Hardware name:|Call Trace:|Call trace:|Mem-Info:|Node |DMA|active_anon|slab_|mapped|free|unevictable|lowmem_reserve|[0-9]+ (?:total|pages)|Workqueue:|Tainted:| ?<TASK>| ?</TASK>| ?<IRQ>| ?</IRQ>| |\t|RIP:|RSP:|RAX:|RDX:|RBP:|R1[0-5]:|R0[89]:|Code:|pc :|lr :|sp :|x[0-9]+ *:|epc :|ra :|status:|\[<|pstate:|Modules linked in:|warn_alloc|nodemask)"),
    ),
)
# Cheap substring prefilter: the trigger regexes only run on logs containing one of these.
BENIGN_KEYWORDS = ("vmalloc error:",)
BENIGN_TRIGGER = re.compile("|".join(f"(?:{b.trigger.pattern})" for b in BENIGN), re.M)
