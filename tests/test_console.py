"""The console pump stores plain \\n lines whatever the kernel and the pty add, and
waits for patterns; exercised on a real pty through pexpect."""
import pexpect

from orchestrator.vm import Console


def test_console_normalizes_line_endings_and_waits(tmp_path):
    # The kernel writes \r\n; the pty turns each \n into \r\n again.
    child = pexpect.spawn("printf", ["one\\r\\ntwo\\r\\r\\nthree\\nready\\n"], echo=False)
    log = tmp_path / "console.log"
    log.write_bytes(b"### header\n")
    con = Console(child, log)
    assert con.wait_for(r"ready", timeout=10)
    con.thread.join(5)
    assert con.text == "one\ntwo\nthree\nready\n"
    assert log.read_bytes() == b"### header\none\ntwo\nthree\nready\n"
    assert con.base_lines == 1 and con.line_count() == 5
    assert con.wait_for(r"never", timeout=0.2) is None
