"""A long-running service for the attach benchmark: handles requests in a loop (a JSON body
parsed, a page rendered, about 1% of it kept in a module-level list) and records, per
50 ms window, how many requests it handled.

    python attach_target.py SECONDS LOG

prints ``ready`` once serving, runs for SECONDS, then writes one line per window to LOG:
``<monotonic seconds at the window's end> <requests in the window>``.
"""

import json
import sys
import time

KEPT = []


def handle(i):
    body = json.dumps({"id": i, "user": f"user{i % 97}", "items": list(range(i % 20))})
    request = json.loads(body)
    page = "".join(f"<li>{item}</li>" for item in request["items"]) * 4
    if i % 100 == 0:
        KEPT.append(page[:200])
    return len(page)


def main():
    seconds = float(sys.argv[1])
    windows = []
    print("ready", flush=True)
    start = time.monotonic()
    window_end = start + 0.05
    handled = 0
    i = 0
    while True:
        handle(i)
        i += 1
        handled += 1
        now = time.monotonic()
        if now >= window_end:
            windows.append((now, handled))
            handled = 0
            window_end = now + 0.05
            if now - start >= seconds:
                break
    with open(sys.argv[2], "w") as f:
        for t, n in windows:
            f.write(f"{t:.6f} {n}\n")


if __name__ == "__main__":
    main()
