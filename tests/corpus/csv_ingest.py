"""Nightly CSV ingestion.

The upstream system drops one CSV file per store; the ingester writes them (here: generates
them), reads each back with the csv module, validates the rows and folds them into per-product
totals.
"""

import csv
import os
import random
import shutil
import tempfile

STORES = 140
ROWS_PER_FILE = 4000
PRODUCTS = 8000

TOTALS = {}


def write_store_file(directory, store, rng):
    path = os.path.join(directory, f"store-{store:03d}.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "qty", "price", "cashier"])
        for _ in range(ROWS_PER_FILE):
            writer.writerow(
                [
                    f"P{rng.randrange(PRODUCTS):05d}",
                    rng.randrange(1, 6),
                    f"{rng.uniform(0.5, 99):.2f}",
                    f"c{rng.randrange(40)}",
                ]
            )
    return path


def ingest(path, totals):
    rejected = 0
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                qty = int(row["qty"])
                amount = qty * float(row["price"])
            except ValueError:
                rejected += 1
                continue
            entry = totals.get(row["sku"])
            if entry is None:
                entry = totals[row["sku"]] = [0, 0.0]
            entry[0] += qty
            entry[1] += amount
    return rejected


def main():
    rng = random.Random(14)
    directory = tempfile.mkdtemp(prefix="ingest-")
    rejected = 0
    try:
        for store in range(STORES):
            rejected += ingest(write_store_file(directory, store, rng), TOTALS)
    finally:
        shutil.rmtree(directory)
    best = max(TOTALS.items(), key=lambda item: item[1][1])
    print(f"ingested {STORES} files, {len(TOTALS)} products, {rejected} rejected")
    print(f"best seller {best[0]}: {best[1][1]:.2f}")


if __name__ == "__main__":
    main()
