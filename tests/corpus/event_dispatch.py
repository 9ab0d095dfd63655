"""Order screens of a warehouse dashboard.

A screen is opened per request to show an order with its pick list; it subscribes to stock
changes on the application's event bus so that a reservation elsewhere updates what it shows.
"""

import random
from collections import defaultdict

ORDERS = 16000


class EventBus:
    def __init__(self):
        self._listeners = defaultdict(list)

    def subscribe(self, topic, callback):
        self._listeners[topic].append(callback)

    def unsubscribe(self, topic, callback):
        self._listeners[topic].remove(callback)

    def publish(self, topic, payload):
        for callback in list(self._listeners[topic]):
            callback(payload)


BUS = EventBus()


def bin_label(sku):
    return f"A{sku % 40:02d}-{sku % 7}"


class OrderScreen:
    def __init__(self, order_id, picks):
        self.order_id = order_id
        self.rows = [{"sku": s, "bin": bin_label(s), "qty": q, "reserved": 0} for s, q in picks]
        self.stale = False
        BUS.subscribe("stock.changed", self.on_stock_changed)

    def on_stock_changed(self, payload):
        sku, _delta = payload
        for row in self.rows:
            if row["sku"] == sku:
                self.stale = True

    def route_length(self):
        aisles = sorted((int(row["bin"][1:3]), int(row["bin"][-1])) for row in self.rows)
        walked = 0
        here = (0, 0)
        for _ in range(120):
            for stop in aisles:
                walked += abs(stop[0] - here[0]) * 3 + abs(stop[1] - here[1])
                here = stop
            aisles.reverse()
        return walked

    def render(self):
        lines = [f"order {self.order_id}"]
        for row in sorted(self.rows, key=lambda r: r["bin"]):
            lines.append(f"{row['bin']:>8} {row['sku']:>6} x{row['qty']}")
        return "\n".join(lines)


def main():
    rng = random.Random(7)
    shown = 0
    walked = 0
    for order_id in range(ORDERS):
        picks = [(rng.randrange(20000), rng.randrange(1, 12)) for _ in range(rng.randrange(5, 16))]
        screen = OrderScreen(order_id, picks)
        shown += len(screen.render())
        walked += screen.route_length()
        if order_id % 2000 == 1999:
            BUS.publish("stock.changed", (rng.randrange(20000), -1))
    print(f"rendered {ORDERS} screens, {shown} characters, route {walked} m")


if __name__ == "__main__":
    main()
