"""Opens files and starts threads on cue, for the tests of descriptor and thread samples.

    python fds_threads.py FILES THREADS DIR

Creates DIR/idle once started, then waits for DIR/start; opens FILES files and starts THREADS
threads that wait on an event; then waits for DIR/go and ends with the files still open (held by
a module global) and the threads still waiting (daemon threads). The cues let a test see a
sample of each state before moving on.
"""

from __future__ import annotations

import os
import sys
import threading
import time

KEPT: list[object] = []
RELEASE = threading.Event()


def wait_for(path: str) -> None:
    # bounded, so a test that died before giving the cue does not leave this running
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"fds_threads.py: {path} never appeared")
        time.sleep(0.01)


def main() -> None:
    files, threads, cues = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.mkdir(os.path.join(cues, "idle"))  # a directory: made in one step, and holds no descriptor
    wait_for(os.path.join(cues, "start"))
    for _ in range(files):
        KEPT.append(open(os.devnull, "rb"))  # noqa: SIM115 (kept open on purpose)
    for _ in range(threads):
        worker = threading.Thread(target=RELEASE.wait, daemon=True)
        worker.start()
        KEPT.append(worker)
    wait_for(os.path.join(cues, "go"))


if __name__ == "__main__":
    main()
