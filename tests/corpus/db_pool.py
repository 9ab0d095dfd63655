"""Connection pool for a (simulated) database driver.

Connections are expensive to open, so the pool opens them on demand up to a fixed size and
hands idle ones back out; each connection owns a receive buffer and a statement cache.
"""

import random
import struct

POOL_SIZE = 24
QUERIES = 430000


class Connection:
    def __init__(self, number):
        self.number = number
        self.recv_buffer = bytearray(256 * 1024)
        self.statements = {}

    def prepare(self, sql):
        stmt = self.statements.get(sql)
        if stmt is None:
            stmt = self.statements[sql] = (sql.split()[0].upper(), sql.count("?"))
        return stmt

    def execute(self, sql, params, rng):
        verb, arity = self.prepare(sql)
        rows = rng.randrange(1, 30)
        view = memoryview(self.recv_buffer)
        for i in range(rows):
            struct.pack_into(">IId", view, i * 16, i, arity, rng.random())
        result = [struct.unpack_from(">IId", view, i * 16) for i in range(rows)]
        view.release()
        return verb, result


class Pool:
    def __init__(self, size):
        self.size = size
        self.idle = []
        self.opened = 0

    def acquire(self):
        if self.idle:
            return self.idle.pop()
        if self.opened < self.size:
            self.opened += 1
            return Connection(self.opened)
        raise RuntimeError("pool exhausted")

    def release(self, conn):
        self.idle.append(conn)


POOL = Pool(POOL_SIZE)

STATEMENTS = (
    "SELECT * FROM orders WHERE id = ?",
    "SELECT sku, qty FROM order_lines WHERE order_id = ? AND warehouse = ?",
    "UPDATE stock SET qty = qty - ? WHERE sku = ?",
    "INSERT INTO audit (actor, action, at) VALUES (?, ?, ?)",
)


def main():
    rng = random.Random(13)
    in_flight = []
    fetched = 0
    for _ in range(QUERIES):
        if len(in_flight) < POOL_SIZE and rng.random() < 0.6:
            in_flight.append(POOL.acquire())
        if in_flight:
            conn = in_flight[rng.randrange(len(in_flight))]
            _verb, rows = conn.execute(rng.choice(STATEMENTS), (rng.randrange(1000),), rng)
            fetched += len(rows)
            if rng.random() < 0.5:
                in_flight.remove(conn)
                POOL.release(conn)
    print(f"fetched {fetched} rows with {POOL.opened} connections")


if __name__ == "__main__":
    main()
