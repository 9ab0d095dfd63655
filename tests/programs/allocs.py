"""Programs with known allocation behaviour, for `memsleuth run` tests.

Each scenario marks its leaking lines with a ``# LEAK-...`` comment; tests find the line numbers
by that marker, so editing this file cannot silently break them.

    python allocs.py leak [N]      N blocks of 1 KiB kept in a module-level list, plus garbage
    python allocs.py cache         a bounded cache that fills, then only churns (not a leak)
    python allocs.py steady S      leaks 16 KiB every 5 ms for S seconds (a steady leak)
    python allocs.py threads       two threads leaking at two different lines
    python allocs.py fork          leaks, forks a child that allocates and exits, leaks again
    python allocs.py raise         leaks, then dies of an uncaught exception
    python allocs.py kill          leaks, then SIGKILLs itself
    python allocs.py big N         leaks N MiB in 1 KiB blocks (sampling accuracy)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

LEAKED: list[object] = []
CACHE: dict[int, bytes] = {}


def churn(n: int) -> int:
    # temporary objects, all freed before returning
    tmp = [str(i) * 3 for i in range(n)]
    return len(tmp)


def leak(n: int) -> None:
    for _ in range(n):
        LEAKED.append(bytearray(1024))  # LEAK-MAIN
        churn(10)


def cache() -> None:
    store = CACHE  # module-level: alive at exit, as caches are
    deadline = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < deadline:
        key = i % 2000
        if key not in store:
            store[key] = b"v" * 512 + str(i).encode()  # CACHE-FILL
        churn(20)
        i += 1
        if i % 200 == 0:
            time.sleep(0.001)
    print(len(store))


def steady(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        LEAKED.append(bytearray(16 * 1024))  # LEAK-STEADY
        churn(50)
        time.sleep(0.005)


def leak_in_thread_a(n: int) -> None:
    for _ in range(n):
        LEAKED.append(bytearray(700))  # LEAK-A
        time.sleep(0)


def leak_in_thread_b(n: int) -> None:
    for _ in range(n):
        LEAKED.append("b" * 900 + "")  # LEAK-B
        LEAKED[-1] = LEAKED[-1] + "!"  # LEAK-B2
        time.sleep(0)


def threads() -> None:
    ts = [
        threading.Thread(target=leak_in_thread_a, args=(3000,)),
        threading.Thread(target=leak_in_thread_b, args=(3000,)),
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def fork() -> None:
    leak(2000)
    pid = os.fork()
    if pid == 0:
        # the child allocates a lot and leaves without cleanup
        junk = [bytearray(4096) for _ in range(5000)]
        os._exit(len(junk) % 7)
    _, status = os.waitpid(pid, 0)
    leak(2000)
    print(
        "child exit",
        os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status,
    )


def big(mib: int) -> None:
    for _ in range(mib * 1024):
        LEAKED.append(bytearray(1000))  # LEAK-BIG
    churn(1000)


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "leak"
    if kind == "leak":
        leak(int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
    elif kind == "cache":
        cache()
    elif kind == "steady":
        steady(float(sys.argv[2]))
    elif kind == "threads":
        threads()
    elif kind == "fork":
        fork()
    elif kind == "raise":
        leak(3000)
        raise RuntimeError("the program failed")
    elif kind == "kill":
        leak(3000)
        time.sleep(0.5)  # past a flush
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "big":
        big(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown scenario {kind}")


if __name__ == "__main__":
    main()
