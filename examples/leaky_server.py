"""A tiny request handler that leaks: every request's payload is remembered "for auditing".

Run it under memsleuth to see the leak found:

    memsleuth watch -- python examples/leaky_server.py
"""

from __future__ import annotations

import hashlib
import sys
import time

AUDIT_LOG: list[bytes] = []  # grows forever: this is the leak


def handle(request_id: int) -> str:
    payload = hashlib.sha256(str(request_id).encode()).digest() * 4096  # 128 KiB
    AUDIT_LOG.append(payload)  # <- the leaking line: nothing ever trims AUDIT_LOG
    return hashlib.md5(payload).hexdigest()


def main(requests: int = 200, pause: float = 0.02) -> None:
    for i in range(requests):
        handle(i)
        time.sleep(pause)
    print(f"served {requests} requests, audit log holds {len(AUDIT_LOG)} payloads", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
