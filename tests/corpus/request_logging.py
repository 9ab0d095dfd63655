"""Structured logging for an API gateway.

Every request gets a logger named after its request id, with a filter that stamps the request's
context (client, route, trace headers) onto every record it emits, so that log lines of one
request can be found together.
"""

import logging
import random

REQUESTS = 17000


class ContextFilter(logging.Filter):
    def __init__(self, context):
        super().__init__()
        self.context = context

    def filter(self, record):
        record.client = self.context["client"]
        record.route = self.context["route"]
        return True


def handle(request_id, client, route, headers, rng):
    log = logging.getLogger(f"gateway.request.{request_id}")
    trace = ";".join(f"{k}={v}" for k, v in headers) + " " * 2400
    context = {"client": client, "route": route, "trace": trace}
    log.addFilter(ContextFilter(context))
    log.info("start %s %s", client, route)
    checksum = 0
    for _ in range(30):
        values = sorted(rng.random() for _ in range(40))
        checksum += int(values[len(values) // 2] * 1000)
    if checksum % 97 == 0:
        log.warning("odd checksum %d for %s", checksum, route)
    log.info("done %s", route)
    return checksum


def main():
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    rng = random.Random(2024)
    total = 0
    for n in range(REQUESTS):
        request_id = f"{rng.getrandbits(48):012x}{n:06d}"
        client = f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"
        route = rng.choice(("/v1/users", "/v1/orders", "/v1/search", "/v2/carts"))
        headers = [
            ("traceparent", f"00-{rng.getrandbits(128):032x}-01"),
            ("user-agent", "curl/8.5"),
        ]
        total += handle(request_id, client, route, headers, rng)
    print(f"handled {REQUESTS} requests, checksum {total}")


if __name__ == "__main__":
    main()
