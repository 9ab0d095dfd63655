"""The allocation tracker: ``with memsleuth.Tracker("out.msl"): ...``."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from types import TracebackType
from typing import Any, Optional, Union

from memsleuth import _native

PathLike = Union[str, "os.PathLike[str]"]


def parse_size(text: Union[str, int]) -> int:
    """``"512KiB"``, ``"1M"``, ``"4096"`` -> bytes."""
    if isinstance(text, int):
        return text
    units = {
        "": 1,
        "b": 1,
        "k": 1 << 10,
        "kb": 1 << 10,
        "kib": 1 << 10,
        "m": 1 << 20,
        "mb": 1 << 20,
        "mib": 1 << 20,
        "g": 1 << 30,
        "gb": 1 << 30,
        "gib": 1 << 30,
    }
    s = text.strip().lower()
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = s[len(number) :].strip()
    if unit not in units or not number:
        raise ValueError(f"not a size: {text!r} (try 512KiB, 1MiB or a number of bytes)")
    return int(float(number) * units[unit])


class Tracker:
    """Records every Python allocation and free (or a Poisson sample by bytes) with its stack.

    The hooks are Rust allocator wrappers installed with ``PyMem_SetAllocator``; a Rust thread
    writes the capture, flushed at least every 50 ms, so a killed process leaves a readable
    capture. One tracker runs at a time per process.

    ``sample``: mean bytes between sampled allocations (e.g. ``"512KiB"``); ``None`` records all.

    ``census``: seconds between censuses of live objects (the ``objects`` instrument), ``None``
    for none. With it on, gc collections are recorded too, and when the tracker stops it takes a
    last census and writes who holds the largest surviving allocations and the growing types
    (``memsleuth report leaks`` / ``report growth`` show them).

    ``native``: also record what the C allocator (``malloc`` and friends) and ``mmap`` hand to
    extension modules and libraries, at the Python line that called them. The process must have
    started with ``memsleuth.native_library()`` in ``LD_PRELOAD`` (``memsleuth run --native``
    does that); otherwise ``start`` raises ``MemsleuthError`` saying so.
    """

    def __init__(
        self,
        path: PathLike,
        sample: Optional[Union[int, str]] = None,
        stack_depth: int = 128,
        rss_interval: float = 0.01,
        census: Optional[float] = None,
        native: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.sample_bytes = 0 if sample is None else parse_size(sample)
        if sample is not None and self.sample_bytes <= 0:
            raise ValueError("sample must be a positive number of bytes")
        self.stack_depth = stack_depth
        self.rss_interval = rss_interval
        if census is not None and not census > 0:
            raise ValueError("census must be a positive number of seconds, or None")
        self.census = census
        self.native = native
        self.stats: Optional[dict[str, Any]] = None
        self._running = False
        self._owner = 0

    def start(self) -> Tracker:
        if self._running:
            raise RuntimeError("this tracker is already running")
        _native.track_start(
            self.path,
            sample_bytes=self.sample_bytes,
            stack_depth=self.stack_depth,
            argv=[sys.executable, *sys.argv],
            rss_interval=self.rss_interval,
            census_interval=self.census or 0.0,
            native=self.native,
        )
        if self.census:
            gc.callbacks.append(_native.gc_callback)
        self._running = True
        self._owner = os.getpid()
        # a program that exits inside the block still leaves a finished capture
        atexit.register(self.stop)
        return self

    def stop(
        self,
        exit_code: Optional[int] = None,
        main_globals: Optional[dict[str, Any]] = None,
        main_name: str = "",
    ) -> None:
        """Stops tracking and finishes the capture. ``main_globals``: the program's module
        globals when it ran as ``__main__`` outside ``sys.modules`` (``memsleuth run``), so
        retention paths can name them."""
        if not self._running:
            return
        self._running = False
        atexit.unregister(self.stop)
        if self.census:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(_native.gc_callback)
        stats = _native.track_stop(exit_code, main_globals, main_name)
        if os.getpid() == self._owner:
            self.stats = stats

    def mark(self, label: str = "iteration") -> None:
        """Marks a point on the capture's timeline."""
        if self._running:
            _native.track_mark(label)

    @property
    def running(self) -> bool:
        return self._running and _native.tracking()

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()
