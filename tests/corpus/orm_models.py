"""A miniature ORM layer for an invoicing service.

Rows fetched from the (simulated) database are turned into model instances; the base class
keeps an identity list of loaded instances so that a flush can find the dirty ones.
"""

import csv
import html
import io
import random
from datetime import date, timedelta
from typing import ClassVar

REQUESTS = 55000


class Model:
    _loaded: ClassVar[list] = []
    fields = ()

    def __init__(self, row):
        for name, value in zip(self.fields, row):
            setattr(self, name, value)
        self.dirty = False
        Model._loaded.append(self)

    def mark(self, **changes):
        for name, value in changes.items():
            setattr(self, name, value)
        self.dirty = True


class Customer(Model):
    fields = ("id", "name", "email", "country")


class Invoice(Model):
    fields = ("id", "customer_id", "issued", "currency")

    def __init__(self, row, line_rows):
        super().__init__(row)
        self.lines = [{"sku": sku, "qty": qty, "unit": unit} for sku, qty, unit in line_rows]

    def total(self):
        return sum(line["qty"] * line["unit"] for line in self.lines)


def fetch(rng, invoice_id):
    customer = Customer(
        (rng.randrange(5000), f"Customer {invoice_id % 977}", f"c{invoice_id}@example.com", "DE")
    )
    issued = date(2024, 1, 1) + timedelta(days=invoice_id % 366)
    line_rows = [
        (f"SKU-{rng.randrange(10**5):05d}", rng.randrange(1, 20), rng.uniform(1, 200))
        for _ in range(rng.randrange(2, 9))
    ]
    return customer, Invoice((invoice_id, customer.id, issued, "EUR"), line_rows)


def handle(rng, invoice_id):
    customer, invoice = fetch(rng, invoice_id)
    total = invoice.total()
    if total > 5000:
        invoice.mark(currency="EUR", note="review")
    ordered = sorted(invoice.lines, key=lambda x: x["sku"])
    text = "\n".join(f"{line['sku']} x{line['qty']} @ {line['unit']:.2f}" for line in ordered)
    cells = "".join(
        f"<tr><td>{html.escape(line['sku'])}</td><td>{line['qty']}</td><td>{line['unit']:.2f}</td></tr>"
        for line in ordered
    )
    heading = f"<h1>{html.escape(customer.name)}</h1><p>{invoice.issued:%d %B %Y}</p>"
    page = f"{heading}<table>{cells}</table>"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sku", "qty", "unit", "amount"])
    for line in ordered:
        writer.writerow(
            [line["sku"], line["qty"], f"{line['unit']:.2f}", f"{line['qty'] * line['unit']:.2f}"]
        )
    return len(text) + len(page) + len(out.getvalue())


def main():
    rng = random.Random(23)
    size = 0
    for invoice_id in range(REQUESTS):
        size += handle(rng, invoice_id)
    print(f"rendered {REQUESTS} invoices, {size} characters")


if __name__ == "__main__":
    main()
