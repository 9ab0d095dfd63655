"""Quote engine for a wholesale catalogue.

A PriceBook is built for every incoming order from the customer's contract (currency, discount,
regional surcharges). Quoting an order line needs the tier table of the line's region: the
price of every catalogue position at every volume tier, which is costly to compute.
"""

import functools
import random

CATALOGUE = 100
TIERS = (1, 10, 50, 100, 500)
REGIONS = ("eu", "us", "apac", "latam")
ORDERS = 3000


class PriceBook:
    def __init__(self, customer, currency_rate, discount, surcharges):
        self.customer = customer
        self.currency_rate = currency_rate
        self.discount = discount
        self.surcharges = surcharges

    @functools.lru_cache(maxsize=None)
    def tier_table(self, region):
        factor = self.currency_rate * (1.0 - self.discount) * self.surcharges[region]
        rows = []
        for position in range(CATALOGUE):
            base = (10.0 + position * 0.37) * factor
            rows.append([round(base / (1 + t / 1000.0), 4) for t in TIERS])
        return rows

    def quote(self, region, position, quantity):
        table = self.tier_table(region)
        tier = max(i for i, t in enumerate(TIERS) if quantity >= t)
        return table[position][tier] * quantity


def main():
    rng = random.Random(42)
    revenue = 0.0
    lines = 0
    for order in range(ORDERS):
        book = PriceBook(
            customer=f"cust-{rng.randrange(900)}",
            currency_rate=rng.choice((1.0, 0.92, 1.08, 151.2)),
            discount=rng.choice((0.0, 0.05, 0.1, 0.15)),
            surcharges={r: 1.0 + rng.random() / 10 for r in REGIONS},
        )
        region = REGIONS[order % len(REGIONS)]
        for _ in range(rng.randrange(200, 500)):
            revenue += book.quote(region, rng.randrange(CATALOGUE), rng.randrange(1, 700))
            lines += 1
    print(f"quoted {lines} lines for {ORDERS} orders, total {revenue:,.2f}")


if __name__ == "__main__":
    main()
