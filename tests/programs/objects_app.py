"""Programs whose objects leak in the ways `memsleuth run`'s objects instrument must explain.

objects_app.py cache SECONDS    a module-level cache of sessions that only grows
objects_app.py gcoff SECONDS    gc disabled while reference cycles pile up
"""

import gc
import sys
import time


class Session:
    def __init__(self, n):
        self.n = n
        self.history = [n]


class Node:
    def __init__(self):
        self.peer = None


CACHE = {}


def cache(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(200):
            CACHE[f"user:{n}"] = Session(n)  # LEAK-SESSION
            n += 1
        time.sleep(0.02)
    print(f"cached {n} sessions")


def gcoff(seconds):
    gc.disable()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        # a moderate pace: the censuses taken while the gc is off walk the whole graph, and a
        # small heap keeps them quick and frequent
        for _ in range(50):
            a, b = Node(), Node()
            a.peer, b.peer = b, a
        time.sleep(0.02)


def daemon(seconds):
    import threading

    def churn():
        while True:
            junk = [{"k": [i]} for i in range(1000)]
            del junk
            time.sleep(0.002)

    threading.Thread(target=churn, daemon=True).start()
    cache(seconds)


def saveall(seconds):
    gc.set_debug(gc.DEBUG_SAVEALL)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            a, b = Node(), Node()
            a.peer, b.peer = b, a
        gc.collect()
        time.sleep(0.05)


if __name__ == "__main__":
    modes = {"cache": cache, "gcoff": gcoff, "daemon": daemon, "saveall": saveall}
    modes[sys.argv[1]](float(sys.argv[2]))
