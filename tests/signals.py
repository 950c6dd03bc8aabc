"""For test children that must answer Ctrl-C: SIGINT's default action back before exec.

A harness started in the background (``cmd &`` in a non-interactive shell, nohup'd bench
runs) hands SIGINT down *ignored*, and a Python started with SIGINT ignored never installs
its KeyboardInterrupt handler: kto would then rightly ignore the test's Ctrl-C, and the
test would measure its harness (2026-12-01: four such failures in a cold CI measurement).
"""
import signal


def sigint_default() -> None:
    """preexec_fn: SIGINT (and SIGQUIT) back to their default action in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
