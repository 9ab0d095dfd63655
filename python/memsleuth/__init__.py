"""memsleuth: find memory leaks in Python programs.

Start with the command line: ``memsleuth watch -- python app.py``. From Python:

>>> import memsleuth
>>> memsleuth.memory()                      # a fast snapshot of this process
>>> with memsleuth.watch("app.msl") as w:   # sample memory in the background
...     run_workload()
>>> w.summary()["verdict"]["kind"]          # 'growing', 'plateau', 'sawtooth', 'stable'
>>> with memsleuth.Tracker("app.msl"):      # every allocation with its Python stack
...     run_workload()                      # then: memsleuth report leaks app.msl
>>> print(memsleuth.census())               # live objects by type
>>> print(memsleuth.why(suspect))           # who keeps it alive, from a module to it
>>> print(memsleuth.hunt(handle, request))  # does calling it leak? runs until it knows
"""

from __future__ import annotations

import os as _os
import sys as _sys

try:
    from memsleuth._hunt import Hunt, hunt
    from memsleuth._native import (
        CaptureError,
        Memory,
        MemsleuthError,
        ProcessError,
        __version__,
        memory,
        native_library,
    )
    from memsleuth._objects import Census, Retention, census, pymalloc, why
    from memsleuth._tracker import Tracker
    from memsleuth._watch import Watch, summary, watch
except ImportError:
    # The command line (`python -m memsleuth`, the `memsleuth` script) reports a missing or
    # foreign extension in one line itself; everyone else gets the ImportError.
    if _sys.argv[:1] != ["-m"] and _os.path.basename(_sys.argv[0]) != "memsleuth":
        raise

__all__ = [
    "CaptureError",
    "Census",
    "Hunt",
    "Memory",
    "MemsleuthError",
    "ProcessError",
    "Retention",
    "Tracker",
    "Watch",
    "__version__",
    "census",
    "hunt",
    "memory",
    "native_library",
    "pymalloc",
    "summary",
    "watch",
    "why",
]
