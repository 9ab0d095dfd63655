"""A session store that leaks objects, not just bytes: every session is cached in a module-level
dict and subscribes a bound method to a global event bus, and neither is ever removed.

    memsleuth run examples/session_cache.py           # the leaking lines and who holds them
    memsleuth report growth memsleuth-session_cache-*.msl   # which types grow, and from where
"""

from __future__ import annotations

import sys
import time
from typing import Callable

LISTENERS: list[Callable[[str], None]] = []  # the event bus: never unsubscribed


class Session:
    def __init__(self, user: str) -> None:
        self.user = user
        self.history: list[str] = []
        LISTENERS.append(self.on_event)  # <- keeps every session alive through a bound method

    def on_event(self, event: str) -> None:
        self.history.append(event)


SESSIONS: dict[str, Session] = {}


def login(n: int) -> Session:
    session = Session(f"user-{n}")
    SESSIONS[session.user] = session  # <- the cache that is never evicted
    return session


def main(users: int = 3000, pause: float = 0.001) -> None:
    for n in range(users):
        login(n)
        time.sleep(pause)
    print(f"{len(SESSIONS)} sessions, {len(LISTENERS)} listeners", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
