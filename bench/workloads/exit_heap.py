"""A five-second program that ends with about 1.3 million live objects: the user store of
``objects_heap.py`` filled at a steady pace, with request-like churn in between, as a service
whose cache grows would. It prints ``MAINEND <unix time>`` as its main code ends, so a harness
can time what follows (the interpreter's shutdown, and a tracker's exit work) from outside.

``EXIT_HEAP_SECONDS`` sets the run's length (default 5).
"""

import os
import time

import objects_heap as heap

SECONDS = float(os.environ.get("EXIT_HEAP_SECONDS", "5"))


def main():
    start = time.monotonic()
    n = heap.USERS
    done = 0
    while done < n:
        # the users due by now, spread evenly over the run
        due = min(n, int(n * (time.monotonic() - start) / (SECONDS * 0.9)) + 1)
        for i in range(done, due):
            u = heap.make_user(i)
            heap.CACHE[u.uid] = u
            heap.BY_EMAIL[u.email] = u.uid
        done = due
        # a request's scratch objects, freed at once
        scratch = [{"id": i, "path": f"/users/{i}"} for i in range(200)]
        del scratch
        time.sleep(0.002)
    while time.monotonic() - start < SECONDS:
        time.sleep(0.01)
    print(f"{len(heap.CACHE)} users")
    print(f"MAINEND {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
