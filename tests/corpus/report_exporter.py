"""Export service with optional output formats.

The service starts with plain-text output only; the first request for another format loads
the modules that format needs, the way plugin-based tools import their back ends on first use.
"""

import importlib
import random

REQUESTS = 48000

FORMATS = {
    "text": [],
    "json": ["json"],
    "decimal": ["decimal", "fractions", "statistics"],
    "email": ["email.mime.multipart", "email.mime.text", "email.mime.application", "email.policy"],
    "xml": ["xml.dom.minidom", "xml.etree.ElementTree", "xml.sax.saxutils"],
    "http": ["http.client", "http.server", "urllib.request", "http.cookiejar"],
    "archive": ["tarfile", "zipfile", "gzip", "bz2", "lzma"],
    "docs": ["pydoc", "difflib", "textwrap", "argparse", "unittest", "doctest"],
}


def load_format(name, loaded):
    if name not in loaded:
        loaded[name] = [importlib.import_module(module) for module in FORMATS[name]]
    return loaded[name]


def render(name, rows, loaded):
    modules = load_format(name, loaded)
    if name == "json":
        return modules[0].dumps(rows)
    if name == "decimal":
        dec = modules[0]
        return ";".join(
            str(dec.Decimal(str(r["amount"])).quantize(dec.Decimal("0.01"))) for r in rows
        )
    return "\n".join(f"{r['id']}\t{r['name']}\t{r['amount']:.2f}" for r in rows)


def main():
    rng = random.Random(6)
    loaded = {}
    order = list(FORMATS)
    produced = 0
    for n in range(REQUESTS):
        available = order[: 1 + n * len(order) // (REQUESTS // 2)] if n < REQUESTS // 2 else order
        name = available[-1] if rng.random() < 0.3 else rng.choice(available)
        rows = [
            {"id": i, "name": f"item {rng.randrange(1000)}", "amount": rng.uniform(1, 500)}
            for i in range(40)
        ]
        produced += len(render(name, rows, loaded))
    print(f"produced {produced} characters in {len(loaded)} formats")


if __name__ == "__main__":
    main()
