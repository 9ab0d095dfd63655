"""Parcel tariff calculator.

At start-up the carrier's tariff grid (zone x weight band x service) is expanded into a lookup
table; then every parcel of the day's manifest is priced from it.
"""

import random

ZONES = 60
BANDS = 400
SERVICES = ("economy", "standard", "express", "overnight")
PARCELS = 1150000

TARIFF = {}


def load_tariff():
    for zone in range(ZONES):
        for band in range(BANDS):
            base = 3.5 + zone * 0.42 + band * 0.018
            for factor, service in enumerate(SERVICES, start=1):
                TARIFF[(zone, band, service)] = (
                    round(base * factor, 2),
                    f"{service}-{zone:02d}-{band:03d}",
                    band * 50 + 50,
                )


def price(zone, grams, service):
    band = min(grams // 50, BANDS - 1)
    amount, code, _limit = TARIFF[(zone, band, service)]
    return amount, code


def main():
    load_tariff()
    rng = random.Random(90)
    revenue = 0.0
    codes = {}
    for _ in range(PARCELS):
        amount, code = price(rng.randrange(ZONES), rng.randrange(20, 20000), rng.choice(SERVICES))
        revenue += amount
        codes[code[:3]] = codes.get(code[:3], 0) + 1
    print(f"priced {PARCELS} parcels, revenue {revenue:,.2f}, {len(TARIFF)} tariff cells, {codes}")


if __name__ == "__main__":
    main()
