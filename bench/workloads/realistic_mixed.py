"""Realistic mix: a web request handler. Parse a raw HTTP request with regexes, decode a JSON
body into objects, validate, compute, render a JSON response, log, keep a bounded cache."""

import json
import os
import re
import time
from collections import OrderedDict

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
REQUESTS = max(1, round(20000 * SCALE))

REQUEST_LINE = re.compile(r"^(GET|POST|PUT|DELETE) (/[\w/.-]*)(?:\?(\S*))? HTTP/1\.[01]$")
HEADER = re.compile(r"^([\w-]+):\s*(.*)$")
EMAIL = re.compile(r"^[\w.+-]+@[\w-]+\.[\w.]+$")


class LineItem:
    __slots__ = ("price", "qty", "sku")

    def __init__(self, sku, qty, price):
        self.sku = sku
        self.qty = qty
        self.price = price

    def total(self):
        return self.qty * self.price


class Order:
    def __init__(self, customer, email, items, note):
        self.customer = customer
        self.email = email
        self.items = items
        self.note = note

    @classmethod
    def from_json(cls, doc):
        items = [LineItem(i["sku"], int(i["qty"]), float(i["price"])) for i in doc["items"]]
        return cls(doc["customer"], doc["email"], items, doc.get("note", ""))

    def validate(self):
        if not EMAIL.match(self.email):
            raise ValueError(f"bad email {self.email!r}")
        return all(i.qty > 0 for i in self.items)

    def summary(self):
        subtotal = sum(i.total() for i in self.items)
        return {
            "customer": self.customer.title(),
            "lines": len(self.items),
            "subtotal": round(subtotal, 2),
            "tax": round(subtotal * 0.2, 2),
            "skus": sorted({i.sku for i in self.items}),
            "note": self.note.strip()[:40],
        }


def make_request(n):
    body = json.dumps(
        {
            "customer": f"customer number {n % 977}",
            "email": f"user{n % 977}@example.com",
            "items": [
                {
                    "sku": f"SKU-{(n * 7 + j) % 503:05d}",
                    "qty": 1 + j % 4,
                    "price": f"{j * 1.25:.2f}",
                }
                for j in range(12)
            ],
            "note": "  please deliver to the back door  " * (1 + n % 3),
        }
    )
    return (
        f"POST /api/v1/orders/{n % 50}?trace={n:x}&lang=en HTTP/1.1\r\n"
        f"Host: shop.example.com\r\nContent-Type: application/json\r\n"
        f"X-Request-Id: req-{n:08d}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


def parse(raw):
    head, _, body = raw.partition("\r\n\r\n")
    lines = head.split("\r\n")
    m = REQUEST_LINE.match(lines[0])
    if m is None:
        raise ValueError("bad request line")
    method, path, query = m.groups()
    headers = {}
    for line in lines[1:]:
        h = HEADER.match(line)
        if h:
            headers[h.group(1).lower()] = h.group(2)
    params = dict(p.split("=", 1) for p in (query or "").split("&") if "=" in p)
    return method, path, params, headers, body


def handle(raw, cache, log):
    method, path, params, headers, body = parse(raw)
    key = (path, headers.get("content-length"))
    order = Order.from_json(json.loads(body))
    if not order.validate():
        return 400, "{}"
    result = order.summary()
    result["path"] = path
    result["trace"] = params.get("trace")
    response = json.dumps(result, sort_keys=True)
    cache[key] = response
    cache.move_to_end(key)
    if len(cache) > 256:
        cache.popitem(last=False)
    log.append(f"{method} {path} 200 {len(response)}B id={headers['x-request-id']}")
    if len(log) > 1000:
        del log[:500]
    return 200, response


def work():
    cache, log = OrderedDict(), []
    total = 0
    for n in range(REQUESTS):
        status, response = handle(make_request(n), cache, log)
        total += status + len(response)
    return total


if __name__ == "__main__":
    t = time.perf_counter()
    work()
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
