"""``memsleuth run``: runs a script or module under the tracker, as ``python`` would."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import runpy
import signal
import sys
import threading
import traceback
from typing import Optional

from memsleuth import _native
from memsleuth._native import MemsleuthError
from memsleuth._tracker import Tracker

# True once the program has ended with an uncaught KeyboardInterrupt. python then dies of SIGINT
# after it has finished; `memsleuth.__main__` does the same after the capture and the report.
interrupted = False
# Set by `memsleuth.__main__` when the program died of an uncaught KeyboardInterrupt and
# memsleuth has finished with it (capture complete, report printed).
die_of_sigint = False


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
    native: bool = False,
) -> int:
    """Runs ``target`` (a path, or a module name when ``module``) with ``args`` as its
    arguments, tracked into ``output``. Returns the exit code ``python`` would have returned.
    With ``native``, a process that did not start with the preload library starts again with
    it (this call then never returns)."""
    if native:
        _ensure_preloaded()
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
        native=native,
    )
    # Under python the program's module globals live until the interpreter shuts down, after
    # the program ends; runpy drops them when it returns. What was alive "at exit" must include
    # them, so keep them (or the error whose frames hold them) until tracking stops.
    kept: object = None
    code = 0
    tracker.start()
    try:
        kept, code = _run_main(target, module)
        # the program's own time ends here; what follows is its shutdown, then memsleuth's.
        # The holders of what grew are searched now: the shutdown may free it (atexit)
        _native.track_main_end(kept if isinstance(kept, dict) else None, target)
        if not interrupted:
            code = _shut_down(tracker, code)
        _native.track_phase("shutdown-end")
    finally:
        main_globals = kept if isinstance(kept, dict) else None
        tracker.stop(exit_code=code, main_globals=main_globals, main_name=target)
        del kept, main_globals
    return code


# Set in the environment of the interpreter started again with the preload library: its path,
# so that a preload the loader refused is told apart from one never asked for.
_PRELOAD_ENV = "MEMSLEUTH_PRELOAD"


def _ensure_preloaded() -> None:
    """Starts this command again in a new interpreter with the native instrument's library in
    ``LD_PRELOAD``, unless this one has it; then takes it out of the environment the program
    sees, so its own subprocesses start as they would have."""
    asked = os.environ.pop(_PRELOAD_ENV, None)
    if _native.native_preloaded():
        if asked is not None:
            kept = [p for p in os.environ.get("LD_PRELOAD", "").split(":") if p and p != asked]
            if kept:
                os.environ["LD_PRELOAD"] = ":".join(kept)
            else:
                os.environ.pop("LD_PRELOAD", None)
        return
    if asked is not None:
        raise MemsleuthError(
            f"the dynamic loader did not load {asked} (LD_PRELOAD is ignored for setuid "
            "interpreters and by some sandboxes): run without --native to track Python's "
            "allocators only"
        )
    if not sys.platform.startswith("linux"):
        raise MemsleuthError(
            f"--native needs Linux (LD_PRELOAD); this is {sys.platform}: run without --native "
            "to track Python's allocators only"
        )
    library = _native.native_library()
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(p for p in (library, env.get("LD_PRELOAD", "")) if p)
    env[_PRELOAD_ENV] = library
    # the same interpreter with the same options (-X, -W, -I ...) and the same arguments
    argv = getattr(sys, "orig_argv", None) or [sys.executable, "-m", "memsleuth", *sys.argv[1:]]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execve(sys.executable, argv, env)


def _run_main(target: str, module: bool) -> tuple[object, int]:
    """Runs the program's main code as ``python`` would; returns what to keep alive until
    tracking stops (its globals, or the error whose frames hold them) and its exit code."""
    global interrupted
    try:
        if module:
            return runpy.run_module(target, run_name="__main__", alter_sys=True), 0
        return runpy.run_path(target, run_name="__main__"), 0
    except SystemExit as e:
        return e, _exit_code(e)
    except KeyboardInterrupt as e:
        _print_target_traceback()
        interrupted = True
        return e, 130
    except BaseException as e:  # the target's own error, reported as python would
        _print_target_traceback()
        return e, 1


def _shut_down(tracker: Tracker, code: int) -> int:
    """What python does after the main code and before tearing modules down, while still
    tracking: waits for non-daemon threads (and the executors' exit hooks), then runs the
    program's ``atexit`` handlers. Memory a program frees only here still grew while it ran;
    the capture's phase marks let the report say so. Returns the exit code."""
    global interrupted
    try:
        _wait_for_threads()
    except KeyboardInterrupt:
        interrupted = True
        return 130
    # memsleuth's own handlers must outlive this: they act after the report
    ours = (tracker.stop, exit_like_python)
    for handler in ours:
        atexit.unregister(handler)
    try:
        atexit._run_exitfuncs()
    finally:
        atexit.register(exit_like_python)
    return code


def exit_like_python() -> None:
    """Dies of SIGINT when the program did, as CPython does after an uncaught KeyboardInterrupt
    (``exit_sigint`` in Modules/main.c, run after finalization): SIGINT's default action back,
    then SIGINT to itself, so the caller (a shell, a test runner) sees death by Ctrl-C and stops
    too. If that does not kill the process (SIGINT blocked), it exits with 130, as CPython does.
    ``memsleuth.__main__`` sets ``die_of_sigint`` once the capture and report are done."""
    if not die_of_sigint:
        return
    # CPython flushes the standard streams during finalization, before the signal
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


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
