"""An asyncio feed aggregator.

Pages of a feed are "fetched" (simulated: produced by a coroutine after yielding to the loop),
parsed into entries, and each page is handed to a background task that normalises it for the
search index while the crawler moves on.
"""

import asyncio
import hashlib
import random

PAGES = 32000
ENTRIES_PER_PAGE = 40

_background = set()
_indexed = {"pages": 0, "entries": 0}


async def fetch_page(rng, number):
    await asyncio.sleep(0)
    return [
        {"id": number * 100 + i, "title": f"Post {rng.randrange(10**6)}", "score": rng.random()}
        for i in range(ENTRIES_PER_PAGE)
    ]


async def normalise(entries):
    await asyncio.sleep(0)
    document = "\n".join(f"{e['id']}\t{e['title'].lower()}\t{e['score']:.5f}" for e in entries)
    _indexed["pages"] += 1
    _indexed["entries"] += len(entries)
    return document


async def crawl(rng):
    digest = hashlib.blake2b()
    for number in range(PAGES):
        entries = await fetch_page(rng, number)
        entries.sort(key=lambda e: -e["score"])
        for entry in entries:
            digest.update(entry["title"].encode())
            digest.update(f"{entry['score']:.3f}".encode())
        task = asyncio.ensure_future(normalise(entries))
        _background.add(task)
    await asyncio.sleep(0.05)
    return digest.hexdigest()[:16]


def main():
    rng = random.Random(31337)
    top = asyncio.run(crawl(rng))
    print(f"indexed {_indexed['pages']} pages, {_indexed['entries']} entries, digest {top}")


if __name__ == "__main__":
    main()
