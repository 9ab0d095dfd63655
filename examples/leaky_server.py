"""A tiny request handler that leaks: every request's payload is remembered "for auditing".

Run it under memsleuth to see the leak found:

    memsleuth watch -- python examples/leaky_server.py   # is it leaking, how fast?
    memsleuth run examples/leaky_server.py               # which line allocated what stays?
    memsleuth hunt examples/leaky_server.py::handle_one  # does one request leak? (yes or no)
"""

from __future__ import annotations

import hashlib
import sys
import time

AUDIT_LOG: list[bytes] = []  # grows forever: this is the leak


def handle(request_id: int) -> str:
    payload = hashlib.sha256(str(request_id).encode()).digest() * 4096  # 128 KiB, freed on return
    digest = hashlib.md5(payload).hexdigest()
    AUDIT_LOG.append(payload[:65536])  # <- the leak: a 64 KiB copy per request, never trimmed
    return digest


def handle_one() -> None:
    """One request, as a test would make it (``memsleuth hunt`` calls it with no arguments)."""
    handle(7)


def main(requests: int = 200, pause: float = 0.02) -> None:
    for i in range(requests):
        handle(i)
        time.sleep(pause)
    print(f"served {requests} requests, audit log holds {len(AUDIT_LOG)} payloads", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
