"""Build planner: resolves the dependency graph of a set of targets and orders the build.

The planner runs many small plans in a row (one per changed file in a monorepo), so it turns
the cyclic garbage collector off for throughput, as many build tools do.
"""

import gc
import random

PLANS = 200
TARGETS_PER_PLAN = 500


COPTS = "['-O2', '-Wall']"
VISIBILITY = "['//visibility:public']"


class Target:
    def __init__(self, name, spec):
        self.name = name
        self.spec = spec
        self.deps = []
        self.dependents = []

    def depends_on(self, other):
        self.deps.append(other)
        other.dependents.append(self)


def load_graph(rng, plan):
    targets = []
    for i in range(TARGETS_PER_PLAN):
        srcs = ", ".join(repr(f"src/p{plan}/t{i}/f{j}.c") for j in range(12))
        spec = f"cc_library(name='t{i}', srcs=[{srcs}], copts={COPTS}, visibility={VISIBILITY})"
        target = Target(f"//pkg{plan % 50}:t{i}", spec)
        for _ in range(min(i, 3)):
            target.depends_on(targets[rng.randrange(i)])
        targets.append(target)
    return targets


def build_order(targets):
    order = []
    state = {}

    def visit(t):
        mark = state.get(t.name)
        if mark == 2:
            return
        state[t.name] = 1
        for d in t.deps:
            visit(d)
        state[t.name] = 2
        order.append(t.name)

    for t in targets:
        visit(t)
    return order


def rebuild_sizes(targets):
    closure = {}
    for t in targets:
        reach = set()
        for d in t.deps:
            reach.add(d.name)
            reach |= closure[d.name]
        closure[t.name] = reach
    return sum(len(r) for r in closure.values())


def main():
    gc.disable()
    rng = random.Random(8)
    steps = 0
    impact = 0
    for plan in range(PLANS):
        targets = load_graph(rng, plan)
        for _config in ("fastbuild", "opt", "dbg"):
            steps += len(build_order(targets))
            impact += rebuild_sizes(targets)
    print(f"planned {PLANS} builds, {steps} steps, rebuild impact {impact}")


if __name__ == "__main__":
    main()
