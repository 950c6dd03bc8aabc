"""Errors that end a command with one clear line and a non-zero exit, never a traceback."""


class KtoError(Exception):
    """A user-facing error: bad input or an unusable environment.

    The message is printed as one line; ``exit_code`` follows kto's convention
    (2: configuration or infrastructure error).
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(KtoError):
    """runs.yaml, a workload file, a kconfig fragment or a patch series is wrong."""
