"""A leaking server loop: handles requests and keeps about 1% of what it allocates in a
module-level list (a "session cache" nobody evicts); a few tens of MiB leak over the run.

An optional argument sets the number of requests (the 10-million-event report case uses it)."""

import json
import os
import sys
import time

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else max(1, round(18000 * SCALE))

_SESSIONS = []  # the leak: grows by one entry per request, never trimmed


def remember_session(request_id, user, page):
    # keeps ~1% of the bytes the request allocated
    _SESSIONS.append({"id": request_id, "user": user, "snippet": page[:1200] + b"."})


def render(user, rows):
    parts = [b"<html><body><h1>", user.encode(), b"</h1><table>"]
    for r in rows:
        parts.append(
            f"<tr><td>{r['sku']}</td><td>{r['qty']}</td><td>{r['price']}</td></tr>".encode()
        )
    parts.append(b"</table></body></html>")
    return b"".join(parts) + b" " * 16384  # padding: templates, scripts


def handle(n):
    body = json.dumps(
        {
            "user": f"user{n % 1000}",
            "cart": [{"sku": n + j, "qty": j % 5, "price": j * 3} for j in range(40)],
        }
    )
    doc = json.loads(body)
    rows = sorted(doc["cart"], key=lambda r: (r["qty"], r["sku"]))
    page = render(doc["user"], rows)
    headers = {"content-length": str(len(page)), "x-request-id": f"req-{n:08d}"}
    remember_session(headers["x-request-id"], doc["user"], page)
    return len(page) + len(headers)


def serve(requests):
    total = 0
    for n in range(requests):
        total += handle(n)
    return total


if __name__ == "__main__":
    t = time.perf_counter()
    serve(REQUESTS)
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
