"""A tiny WSGI-like request pipeline with after-request callbacks.

Middlewares may schedule work to run once a response has been produced: the compression
middleware records the response size for its statistics, the audit middleware copies the
request context into the access log.
"""

import random
import zlib

REQUESTS = 10000

_post_handlers = []
_stats = {"compressed": 0, "raw": 0, "logged": 0}
_access_log = []


def after_request(fn):
    _post_handlers.append(fn)
    return fn


def audit_middleware(request):
    preview = request["body"][:1536]
    context = {"path": request["path"], "headers": dict(request["headers"]), "body": preview}

    @after_request
    def record(response):
        if response["status"] >= 500:
            _access_log.append((context["path"], response["status"]))
        _stats["logged"] += 1

    return request


def compression_middleware(response):
    packed = zlib.compress(response["body"], 6)
    _stats["raw"] += len(response["body"])
    _stats["compressed"] += len(packed)
    response["body"] = packed
    return response


def application(request, rng):
    words = [f"w{rng.randrange(3000)}" for _ in range(400)]
    text = " ".join(words).encode()
    return {"status": 200 if rng.random() > 0.01 else 503, "body": text}


def serve(request, rng):
    start = len(_post_handlers)
    request = audit_middleware(request)
    response = compression_middleware(application(request, rng))
    for fn in _post_handlers[start:]:
        fn(response)
    return response


def main():
    rng = random.Random(99)
    for n in range(REQUESTS):
        request = {
            "path": f"/api/items/{rng.randrange(100000)}",
            "headers": [("host", "shop.example"), ("x-request-id", f"{n:08d}"), ("accept", "*/*")],
            "body": rng.randbytes(2048),
        }
        serve(request, rng)
    ratio = _stats["compressed"] / max(1, _stats["raw"])
    print(f"served {REQUESTS} requests, compression ratio {ratio:.3f}, {len(_access_log)} errors")


if __name__ == "__main__":
    main()
