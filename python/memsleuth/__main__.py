"""The ``memsleuth`` command; all of it is implemented in Rust."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys

# Set when `memsleuth run`'s program died of an uncaught KeyboardInterrupt and memsleuth has
# finished with it (capture complete, report printed).
_die_of_sigint = False


def _exit_like_python() -> None:
    """Dies of SIGINT when the program did, as CPython does after an uncaught KeyboardInterrupt
    (``exit_sigint`` in Modules/main.c, run after finalization): SIGINT's default action back,
    then SIGINT to itself, so the caller (a shell, a test runner) sees death by Ctrl-C and stops
    too. If that does not kill the process (SIGINT blocked), it exits with 130, as CPython does.
    """
    if not _die_of_sigint:
        return
    # CPython flushes the standard streams during finalization, before the signal
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def main() -> None:
    global _die_of_sigint
    try:
        from memsleuth import _native
    except ImportError as e:  # a broken install should say so in one line
        version = ".".join(map(str, sys.version_info[:2]))
        sys.stderr.write(
            f"memsleuth: error: the native extension cannot be loaded into this Python "
            f"({version}, {sys.executable}): {e}; install memsleuth for this interpreter "
            f"(`{sys.executable} -m pip install memsleuth`; CPython 3.9-3.13)\n"
        )
        sys.exit(1)
    # registered before the program runs, so it runs after the program's own atexit handlers
    # (they run last-registered first), as CPython's exit_sigint comes after all of them
    atexit.register(_exit_like_python)
    code = _native.cli_main(["memsleuth", *sys.argv[1:]])
    run = sys.modules.get("memsleuth._run")
    _die_of_sigint = code == 130 and bool(getattr(run, "interrupted", False))
    sys.exit(code)


if __name__ == "__main__":
    main()
