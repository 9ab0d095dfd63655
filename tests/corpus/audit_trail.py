"""Audit trail for a payments API.

Every state change of a payment is described as one line of the audit trail; the lines are
buffered as encoded chunks, ready to be shipped to the compliance archive in one write.
"""

import hashlib
import math
import random

PAYMENTS = 50000
STATES = ("created", "authorised", "captured", "settled")

_pending_chunks = []


def record(payment_id, state, amount, actor, previous_hash):
    entry_hash = hashlib.sha1(f"{previous_hash}{payment_id}{state}{amount}".encode()).hexdigest()
    text = f"{payment_id}\t{state}\t{amount:.2f}\t{actor}\t{entry_hash}\t{previous_hash}\n"
    _pending_chunks.append(text.encode())
    return entry_hash


def risk_score(rng, amount):
    score = 0.0
    for _ in range(320):
        x = rng.random()
        score += math.exp(-x * amount / 500.0) * x
    return score / 320


def process_payment(rng, payment_id, previous_hash):
    amount = round(rng.uniform(1, 2000), 2)
    if risk_score(rng, amount) > 0.45:
        return record(payment_id, "declined", amount, "risk-engine", previous_hash)
    actor = f"svc-{rng.choice(('web', 'mobile', 'batch'))}-{rng.randrange(20)}"
    fees = [round(amount * rate, 4) for rate in (0.014, 0.0025, 0.001)]
    ledger = {"gross": amount, "fees": sum(fees), "net": round(amount - sum(fees), 2)}
    for state in STATES:
        previous_hash = record(payment_id, state, ledger["net"], actor, previous_hash)
        if state == "authorised" and rng.random() < 0.03:
            previous_hash = record(payment_id, "reversed", -ledger["net"], actor, previous_hash)
            break
    return previous_hash


def main():
    rng = random.Random(64)
    head = "0" * 40
    for payment_id in range(PAYMENTS):
        head = process_payment(rng, f"pay_{payment_id:08d}", head)
    print(f"processed {PAYMENTS} payments, head {head[:12]}")


if __name__ == "__main__":
    main()
