"""The in-process sampler: ``with memsleuth.watch("out.msl"): ...``."""

from __future__ import annotations

import atexit
import json
import os
import sys
from types import TracebackType
from typing import Any, Optional, Union

from memsleuth import _native

PathLike = Union[str, "os.PathLike[str]"]


def summary(path: PathLike) -> dict[str, Any]:
    """Analyse a capture: the verdict, rates and figures, as a dict (same as ``--json``)."""
    result: dict[str, Any] = json.loads(_native.summary_json(os.fspath(path)))
    return result


class Watch:
    """Samples this process' memory (and its children's) on a background Rust thread.

    The thread never takes the GIL. The capture is complete when the block ends, and readable up
    to its last flush (at most one second old) if the process is killed first.
    """

    def __init__(
        self,
        path: PathLike,
        interval: float = 0.05,
        children: bool = True,
        full: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self.interval = interval
        self.children = children
        self.full = full
        self._sampler: Optional[_native.Sampler] = None
        self.samples = 0

    def start(self) -> Watch:
        if self._sampler is not None:
            raise RuntimeError("this watch is already running")
        self._sampler = _native.Sampler(
            self.path,
            interval=self.interval,
            children=self.children,
            full=self.full,
            argv=[sys.executable, *sys.argv],
            python_version=sys.version.split()[0],
        )
        # a process that exits inside the block still gets a finished capture
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            return
        atexit.unregister(self.stop)
        self.samples = sampler.stop()

    def mark(self, label: str = "iteration") -> None:
        """Marks a point on the timeline; with three or more marks the summary reports bytes per
        iteration."""
        if self._sampler is not None:
            self._sampler.mark(label)

    @property
    def running(self) -> bool:
        return self._sampler is not None and self._sampler.running

    def summary(self) -> dict[str, Any]:
        """The analysis of the capture written so far (call after the block for the verdict)."""
        return summary(self.path)

    def __enter__(self) -> Watch:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()


def watch(
    path: PathLike, interval: float = 0.05, children: bool = True, full: bool = True
) -> Watch:
    """Sample memory in the background while a block runs::

        with memsleuth.watch("out.msl", interval=0.05) as w:
            for request in requests:
                handle(request)
                w.mark()
        print(w.summary()["verdict"])

    ``interval`` is in seconds; ``children`` follows child processes; ``full=False`` skips USS
    and PSS (cheaper).
    """
    return Watch(path, interval=interval, children=children, full=full)
