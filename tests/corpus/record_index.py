"""Change detection for a product feed.

Every row of the nightly feed is split into fields, normalised, and digested by a small C
helper (_fieldhash); rows whose digest differs from the last one seen for the product are
queued for re-indexing with their search keywords.
"""

import random
import unicodedata
from decimal import ROUND_HALF_EVEN, Decimal

import _fieldhash

ROWS = 210000
PRODUCTS = 2500
COLUMNS = ("sku", "title", "brand", "price", "stock", "category", "colour", "size")
CENT = Decimal("0.01")


def feed_rows(rng):
    for n in range(ROWS):
        sku = 100000 + n % PRODUCTS
        price = sku % 9000 / 100 + rng.randrange(3)
        title = f" Item {sku} Deluxe Édition "
        stock = rng.randrange(50)
        yield f"{sku};{title};Brand{sku % 97};{price};{stock};Cat{sku % 31};C{sku % 12};S{n % 6}"


def keywords(record):
    words = (
        unicodedata.normalize("NFKD", record["title"]).encode("ascii", "ignore").decode().split()
    )
    words += [record["brand"], record["category"], record["colour"]]
    return sorted(set(words))


def main():
    rng = random.Random(17)
    last_digest = {}
    queue = []
    batches = 0
    for line in feed_rows(rng):
        fields = [field.strip().lower() for field in line.split(";")]
        record = dict(zip(COLUMNS, fields))
        record["price"] = Decimal(record["price"]).quantize(CENT, rounding=ROUND_HALF_EVEN)
        terms = keywords(record)
        digest = _fieldhash.digest(fields)
        if last_digest.get(record["sku"]) != digest:
            last_digest[record["sku"]] = digest
            queue.append((record["sku"], terms))
        if len(queue) >= 500:
            batches += 1
            queue.clear()
    print(f"{len(last_digest)} products, {ROWS} rows, {batches} re-index batches")


if __name__ == "__main__":
    main()
