"""The ``memsleuth`` command; all of it is implemented in Rust."""

from __future__ import annotations

import atexit
import sys


def main() -> None:
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
    from memsleuth import _run

    # registered before the program runs, so it runs after the program's own atexit handlers
    # (they run last-registered first), as CPython's exit_sigint comes after all of them
    atexit.register(_run.exit_like_python)
    code = _native.cli_main(["memsleuth", *sys.argv[1:]])
    _run.die_of_sigint = code == 130 and _run.interrupted
    sys.exit(code)


if __name__ == "__main__":
    main()
