"""Mail spool writer.

Outgoing messages are rendered and written to a spool directory, one file per message, where a
separate delivery agent picks them up. Each message is written with os-level calls so that it
can be checked in the flush step of its batch.
"""

import os
import random
import shutil
import tempfile
import textwrap

MESSAGES = 800
BATCH = 50


def render_message(rng, n):
    recipients = ", ".join(
        f"user{rng.randrange(10000)}@example.org" for _ in range(rng.randrange(1, 6))
    )
    paragraphs = [
        " ".join(
            f"order {rng.randrange(10**6)} shipped on {rng.randrange(1, 29)}.02.2024;"
            for _ in range(12)
        )
        for _ in range(40)
    ]
    body = "\n\n".join(textwrap.fill(p, width=72) for p in paragraphs)
    headers = f"To: {recipients}\nSubject: Shipping update {n}\n"
    headers += f"Message-Id: <{n}.{rng.getrandbits(40):x}@shop>\n"
    return f"{headers}\n{body}\n".encode()


def spool(directory, n, data):
    path = os.path.join(directory, f"msg-{n:06d}.eml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    return fd


def main():
    rng = random.Random(4)
    directory = tempfile.mkdtemp(prefix="spool-")
    written = 0
    try:
        pending = []
        for n in range(MESSAGES):
            data = render_message(rng, n)
            pending.append(spool(directory, n, data))
            written += len(data)
            if len(pending) == BATCH:
                sizes = [os.fstat(fd).st_size for fd in pending]
                if min(sizes) == 0:
                    raise OSError("empty spool file")
                pending = []
    finally:
        shutil.rmtree(directory)
    print(f"spooled {MESSAGES} messages, {written} bytes")


if __name__ == "__main__":
    main()
