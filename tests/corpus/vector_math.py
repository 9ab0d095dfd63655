"""Particle simulation step for a small physics toy.

Positions live in flat arrays; each step computes pairwise forces inside grid cells with plain
floats and tuples, then integrates. Everything temporary is built and thrown away per step.
"""

import math
import random
from array import array

PARTICLES = 4000
STEPS = 55
CELL = 0.1


def build_cells(xs, ys):
    cells = {}
    for i in range(len(xs)):
        key = (int(xs[i] / CELL), int(ys[i] / CELL))
        cells.setdefault(key, []).append(i)
    return cells


def step(xs, ys, vxs, vys, dt):
    cells = build_cells(xs, ys)
    forces = [(0.0, 0.0)] * len(xs)
    for members in cells.values():
        for a in members:
            fx, fy = forces[a]
            for b in members:
                if a == b:
                    continue
                dx, dy = xs[a] - xs[b], ys[a] - ys[b]
                d2 = dx * dx + dy * dy + 1e-6
                inv = 1.0 / (d2 * math.sqrt(d2))
                fx, fy = fx + dx * inv * 1e-7, fy + dy * inv * 1e-7
            forces[a] = (fx, fy)
    energy = 0.0
    for i, (fx, fy) in enumerate(forces):
        vxs[i] = (vxs[i] + fx * dt) * 0.999
        vys[i] = (vys[i] + fy * dt) * 0.999
        xs[i] = (xs[i] + vxs[i] * dt) % 1.0
        ys[i] = (ys[i] + vys[i] * dt) % 1.0
        energy += 0.5 * (vxs[i] ** 2 + vys[i] ** 2)
    stats = {
        "energy": energy,
        "cells": len(cells),
        "max_speed": max(math.hypot(vx, vy) for vx, vy in zip(vxs, vys)),
    }
    return stats


_rng = random.Random(2)
xs = array("d", (_rng.random() for _ in range(PARTICLES)))
ys = array("d", (_rng.random() for _ in range(PARTICLES)))
vxs = array("d", (_rng.gauss(0, 0.01) for _ in range(PARTICLES)))
vys = array("d", (_rng.gauss(0, 0.01) for _ in range(PARTICLES)))
history = array("d", [0.0] * 200000)


def main():
    for n in range(STEPS):
        stats = step(xs, ys, vxs, vys, 0.01)
        history[n % len(history)] = stats["energy"]
    energy, cells, speed = stats["energy"], stats["cells"], stats["max_speed"]
    print(f"final energy {energy:.6e}, cells {cells}, max speed {speed:.4f}")


if __name__ == "__main__":
    main()
