"""The part of ``memsleuth attach`` that runs inside the target process.

The attacher loads memsleuth's extension into the target and starts a thread there that takes
the GIL and calls :func:`begin` with the path of a request file (JSON). From then on the target
talks to the attacher through files beside the request, in a directory only they share:

- ``REQUEST.status``: lines saying how far the session got: ``thread`` and ``gil`` (the
  extension's agent thread started, then took the GIL), ``tracker`` (starting it),
  ``started``, ``holders LENGTH`` (the recording ended: the capture is whole up to LENGTH,
  the hooks record no more, and the session waits for ``REQUEST.wanted``), then ``done``
  (``done exiting``: the program is exiting; ``done hooks-kept``: someone installed an
  allocator over memsleuth's, which stays as a pass-through under it) or ``error REASON``;
- ``REQUEST.stop``: made by the attacher to end the recording early (Ctrl-C);
- ``REQUEST.wanted``: the attacher's answer to ``holders``, JSON ``[[address, rank], ...]``: the
  surviving blocks of the largest sites, from the leak report's pass the attacher keeps on the
  capture, for the session to look up their holders. The program never reads its own capture;
  with no answer within ``HOLDERS_WAIT`` (an attacher gone or stuck), only instances of the
  growing types get holders;
- ``REQUEST.answer``: for ``attach --why EXPR`` and ``attach --census``, which record nothing,
  the text to print (status ``answered``).

The recording also ends when the attacher is gone (killed, its directory removed).

The session leaves the process as it found it: the tracker stopped (its threads joined), the
allocator hooks taken out, memsleuth's modules dropped from ``sys.modules`` when the program
had not imported them itself. ``_thread`` rather than ``threading``, so that a program that never
imported ``threading`` does not find it imported.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import sys
import time
from typing import Any

# How often the session looks for the attacher's stop file and the end of its duration.
POLL_SECONDS = 0.05
# How long the recording's end waits for the attacher's blocks to hold. The program runs
# untracked meanwhile, while the attacher reads what its pass has not read yet (much of the
# capture, on a machine with no idle core): this is for an attacher that is stuck.
HOLDERS_WAIT = 120.0


def begin(request_path: str, modules_before: set[str]) -> None:
    """Reads the request and starts the recording session on a thread of its own, so that the
    agent thread that called this can give the GIL back at once."""
    with open(request_path, encoding="utf-8") as f:
        request: dict[str, Any] = json.load(f)
    _thread.start_new_thread(_session, (request, request_path, modules_before))


def _status(request_path: str, line: str) -> None:
    # the attacher may be gone, and its directory with it: the program must not hear of it
    with contextlib.suppress(OSError), open(request_path + ".status", "a", encoding="utf-8") as f:
        f.write(line.replace("\n", " ") + "\n")


def _attacher_gone(request_path: str, attacher: int) -> bool:
    """The attacher was killed or its directory removed: nobody will ask to stop."""
    if not os.path.exists(request_path):
        return True
    try:
        os.kill(attacher, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def _answer(request: dict[str, Any], request_path: str, modules_before: set[str]) -> None:
    """`attach --why EXPR` / `attach --census`: one answer about the process, nothing recorded."""
    try:
        import memsleuth
        from memsleuth import _native

        _native.ignore_this_thread()
        mode = request["mode"]
        if mode["kind"] == "why":
            main = sys.modules["__main__"].__dict__
            try:
                obj = eval(mode["expr"], main)  # the user's own expression
            except Exception as e:  # said to the attacher in one line
                raise ValueError(
                    f"cannot evaluate {mode['expr']!r} in the process' __main__: "
                    f"{type(e).__name__}: {e}"
                ) from None
            text = str(memsleuth.why(obj))
            del obj
        else:
            text = str(memsleuth.census())
        with open(request_path + ".answer", "w", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")
    except BaseException as e:  # every failure is the attacher's one line
        _status(request_path, f"error {e}")
    else:
        _status(request_path, "answered")
    finally:
        _forget(modules_before)


def _session(request: dict[str, Any], request_path: str, modules_before: set[str]) -> None:
    if request.get("mode", {}).get("kind", "record") != "record":
        _answer(request, request_path, modules_before)
        return
    _status(request_path, "tracker")
    try:
        from memsleuth import _native
        from memsleuth._tracker import Tracker

        # this thread's work is memsleuth's, not the program's
        _native.ignore_this_thread()
        if request.get("native"):
            _native.native_attach()
        tracker = Tracker(
            request["output"],
            sample=request.get("sample") or None,
            census=request.get("census") or None,
            native=_native.native_preloaded() or bool(request.get("native")),
        )
        tracker.start()
    except BaseException as e:  # every failure is the attacher's one line
        _status(request_path, f"error {e}")
        with contextlib.suppress(Exception):
            _native.track_uninstall()  # what was patched in before the failure
        _forget(modules_before)
        return
    _status(request_path, "started")
    duration = request.get("duration")
    deadline = None if duration is None else time.monotonic() + float(duration)
    stop = request_path + ".stop"
    attacher = int(request.get("attacher") or 0)
    try:
        while tracker.running and not os.path.exists(stop):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if attacher and _attacher_gone(request_path, attacher):
                break
            time.sleep(POLL_SECONDS)
    finally:
        # the tracker stopped on its own: the program is exiting (its atexit handlers ran)
        exiting = not tracker.running
        try:
            try:
                # no wait inside a call into memsleuth's extension: a thread that must take the
                # GIL back while the interpreter finalizes is ended by it, which an extension's
                # frames on its stack would turn into an abort of the program
                upto = None if exiting else _native.track_end_sync()
                if upto is not None:
                    _native.track_end_hold(_blocks_to_hold(request_path, attacher, upto) or [])
            finally:
                tracker.stop()
            restored = _native.track_uninstall()
        except BaseException as e:
            _status(request_path, f"error {e}")
        else:
            _forget(modules_before)
            done = "done exiting" if exiting else "done" if restored else "done hooks-kept"
            _status(request_path, done)


def _blocks_to_hold(request_path: str, attacher: int, upto: int) -> list[tuple[int, int]] | None:
    """Asks the attacher which blocks to look the holders of up, the capture being whole up to
    ``upto``, and waits for its answer."""
    _status(request_path, f"holders {upto}")
    wanted = request_path + ".wanted"
    deadline = time.monotonic() + HOLDERS_WAIT
    while time.monotonic() < deadline:
        # the attacher writes the answer beside it, then renames it: never read half-written
        unreadable = (OSError, ValueError, TypeError)
        with contextlib.suppress(*unreadable), open(wanted, encoding="utf-8") as f:
            return [(int(a), int(rank)) for a, rank in json.load(f)]
        if not attacher or _attacher_gone(request_path, attacher):
            return None
        time.sleep(POLL_SECONDS)
    return None


def _forget(modules_before: set[str]) -> None:
    """Drops the memsleuth modules this session imported, so the program sees none of them."""
    for name in list(sys.modules):
        if (name == "memsleuth" or name.startswith("memsleuth.")) and name not in modules_before:
            del sys.modules[name]
