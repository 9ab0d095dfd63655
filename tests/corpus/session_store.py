"""Session handling for a small web front end.

Each request carries a request id and a cookie header; the handler parses the cookie, checks a
signature, builds the view state that the next page needs and answers with a rendered body.
"""

import hashlib
import hmac
import random

SECRET = b"s3cr3t-signing-key"
REQUESTS = 24000

_SESSIONS = {}


class SessionState:
    __slots__ = ("expires", "request_id", "user", "view_state")

    def __init__(self, request_id, user, view_state, expires):
        self.request_id = request_id
        self.user = user
        self.view_state = view_state
        self.expires = expires


def parse_cookie(header):
    pairs = {}
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        pairs[key] = value
    return pairs


def signature(user, issued):
    return hmac.new(SECRET, f"{user}:{issued}".encode(), hashlib.sha256).hexdigest()


def render(user, items):
    rows = "".join(f"<li>{name}: {qty} x {price:.2f}</li>" for name, qty, price in items)
    return f"<html><body><h1>Hello {user}</h1><ul>{rows}</ul></body></html>"


def handle(request_id, cookie, rng):
    fields = parse_cookie(cookie)
    user = fields.get("user", "anonymous")
    issued = int(fields.get("issued", "0"))
    if fields.get("sig") != signature(user, issued):
        return 403, ""
    items = [
        (f"item-{rng.randrange(5000)}", rng.randrange(1, 9), rng.random() * 90) for _ in range(60)
    ]
    items.sort(key=lambda item: (item[2], item[0]))
    body = render(user, items)
    state = "&".join(f"{name}={qty}:{price:.4f}" for name, qty, price in items) + "#" * 512
    _SESSIONS[request_id] = SessionState(request_id, user, state, issued + 1800)
    return 200, body


def main():
    rng = random.Random(1234)
    served = 0
    total = 0
    for n in range(REQUESTS):
        user = f"user{rng.randrange(400)}"
        issued = 1_700_000_000 + n
        cookie = f"user={user}; issued={issued}; sig={signature(user, issued)}; theme=dark"
        request_id = f"{rng.getrandbits(64):016x}-{n}"
        status, body = handle(request_id, cookie, rng)
        served += status == 200
        total += len(body)
    print(f"served {served} requests, {total} bytes")


if __name__ == "__main__":
    main()
