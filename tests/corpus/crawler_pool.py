"""Site crawler with a fixed pool of worker threads.

Pages come from a (simulated) fetcher; workers parse them with html.parser, count the words of
the visible text and report the links they find. The pool is started once and stopped at the
end with one sentinel per worker.
"""

import queue
import random
import threading
from html.parser import HTMLParser

WORKERS = 6
PAGES = 3000
VOCABULARY = [f"word{i}" for i in range(20000)]

WORD_COUNTS = {}


class TextAndLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.words = []
        self.links = []
        self.in_text = False

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.in_text = True
        elif tag == "a":
            self.links.extend(value for name, value in attrs if name == "href")

    def handle_endtag(self, tag):
        if tag == "p":
            self.in_text = False

    def handle_data(self, data):
        if self.in_text:
            self.words.extend(data.split())


def fetch(page_no):
    rng = random.Random(page_no)
    parts = []
    for _ in range(12):
        text = " ".join(rng.choice(VOCABULARY) for _ in range(40))
        parts.append(f"<p>{text} <a href='/p/{rng.randrange(PAGES)}'>more</a></p>")
    paragraphs = "".join(parts)
    return f"<html><head><title>Page {page_no}</title></head><body>{paragraphs}</body></html>"


def worker(tasks, results, counts, lock):
    while True:
        page_no = tasks.get()
        if page_no is None:
            break
        parser = TextAndLinks()
        parser.feed(fetch(page_no))
        local = {}
        for word in parser.words:
            local[word] = local.get(word, 0) + 1
        with lock:
            for word, n in local.items():
                counts[word] = counts.get(word, 0) + n
        results.put((page_no, len(parser.links)))


def main():
    tasks = queue.Queue()
    results = queue.Queue()
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=worker, args=(tasks, results, WORD_COUNTS, lock), name=f"crawler-{i}"
        )
        for i in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    for page_no in range(PAGES):
        tasks.put(page_no)
    links = sum(results.get()[1] for _ in range(PAGES))
    for _ in threads:
        tasks.put(None)
    for thread in threads:
        thread.join()
    top = sorted(WORD_COUNTS.items(), key=lambda item: (-item[1], item[0]))[:3]
    print(f"crawled {PAGES} pages, {links} links, top words {top}")


if __name__ == "__main__":
    main()
