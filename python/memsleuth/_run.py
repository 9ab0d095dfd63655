"""``memsleuth run``: runs a script or module under the tracker, as ``python`` would."""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
import threading
import traceback
from typing import Optional

from memsleuth._native import MemsleuthError
from memsleuth._tracker import Tracker

# True once the program has ended with an uncaught KeyboardInterrupt. python then dies of SIGINT
# after it has finished; `memsleuth.__main__` does the same after the capture and the report.
interrupted = False


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    # python prints a non-integer exit argument and exits with 1
    print(code, file=sys.stderr)
    return 1


def run_target(
    output: str,
    target: str,
    args: list[str],
    module: bool,
    sample_bytes: int,
    stack_depth: int,
    census: float = 1.0,
) -> int:
    """Runs ``target`` (a path, or a module name when ``module``) with ``args`` as its
    arguments, tracked into ``output``. Returns the exit code ``python`` would have returned."""
    if module:
        # like `python -m`: the current directory is sys.path[0] (it replaces memsleuth's own
        # entry: the console script's directory, or the cwd under `python -m memsleuth`)
        sys.path[0] = os.getcwd()
        if _find_module(target) is None:
            raise MemsleuthError(
                f"no module named {target!r} (it must be importable from {os.getcwd()})"
            )
    else:
        # like `python script.py`: the script's directory is sys.path[0]
        sys.path[0] = os.path.dirname(os.path.abspath(target))
    sys.argv = [target, *args]
    tracker = Tracker(
        output,
        sample=sample_bytes or None,
        stack_depth=stack_depth,
        census=census or None,
    )
    code = 0
    # Under python the program's module globals live until the interpreter shuts down, after
    # the program ends; runpy drops them when it returns. What was alive "at exit" must include
    # them, so keep them (or the error whose frames hold them) until tracking stops.
    kept: object = None
    tracker.start()
    try:
        if module:
            kept = runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            kept = runpy.run_path(target, run_name="__main__")
        _wait_for_threads()
    except SystemExit as e:
        kept = e
        code = _exit_code(e)
    except KeyboardInterrupt as e:
        global interrupted
        kept = e
        _print_target_traceback()
        interrupted = True
        code = 130
    except BaseException as e:  # the target's own error, reported as python would
        kept = e
        _print_target_traceback()
        code = 1
    finally:
        main_globals = kept if isinstance(kept, dict) else None
        tracker.stop(exit_code=code, main_globals=main_globals, main_name=target)
        del kept, main_globals
    return code


def _find_module(name: str) -> Optional[object]:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _wait_for_threads() -> None:
    # python waits for non-daemon threads before it exits; so do we, while still tracking
    shutdown: Optional[object] = getattr(threading, "_shutdown", None)
    if callable(shutdown):
        shutdown()


def _print_target_traceback() -> None:
    etype, value, tb = sys.exc_info()
    # drop our own frames (this module, runpy) from the top of the traceback, as python shows
    # only the program's
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in (__name__, "runpy"):
        tb = tb.tb_next
    traceback.print_exception(etype, value, tb)
