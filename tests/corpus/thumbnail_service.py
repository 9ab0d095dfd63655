"""Thumbnail rendering for an image gallery.

Images arrive in a toy run-length format; they are decoded, scaled down, contrast-stretched
with a histogram lookup table, and the rendered thumbnails are registered with the service so
that they can be released when the process exits.
"""

import atexit
import random
import zlib

IMAGES = 600
WIDTH = 256
HEIGHT = 256
SCALE = 2

HEADER = b"P5 %d %d 255\n" % (WIDTH // SCALE, HEIGHT // SCALE)

_rendered = {}


def _release_all():
    _rendered.clear()


atexit.register(_release_all)


def encode_image(rng):
    runs = []
    remaining = WIDTH * HEIGHT
    while remaining:
        n = min(remaining, rng.randrange(1, 40))
        runs.append(bytes((n, rng.randrange(256))))
        remaining -= n
    return zlib.compress(b"".join(runs))


def decode_image(blob):
    data = zlib.decompress(blob)
    pixels = bytearray()
    for i in range(0, len(data), 2):
        pixels += bytes((data[i + 1],)) * data[i]
    return bytes(pixels)


def downscale(pixels):
    rows = [pixels[y * WIDTH : (y + 1) * WIDTH : SCALE] for y in range(0, HEIGHT, SCALE)]
    return b"".join(rows)


def stretch_table(pixels):
    counts = [0] * 256
    for v in pixels:
        counts[v] += 1
    lo = next(v for v in range(256) if counts[v])
    hi = next(v for v in range(255, -1, -1) if counts[v])
    span = max(1, hi - lo)
    return bytes(min(255, max(0, (v - lo) * 255 // span)) for v in range(256))


def render_thumbnail(name, blob):
    small = downscale(decode_image(blob))
    table = stretch_table(small)
    thumbnail = HEADER + small.translate(table)
    _rendered[name] = thumbnail
    return len(thumbnail)


def main():
    rng = random.Random(11)
    produced = 0
    for n in range(IMAGES):
        produced += render_thumbnail(f"gallery/{n // 100}/img{n:05d}.rle", encode_image(rng))
    print(f"rendered {IMAGES} thumbnails, {produced} bytes")


if __name__ == "__main__":
    main()
