#!/usr/bin/env python3
"""Generate a deterministic file tree for the layer benchmark.

usage: gen_tree.py DIR TOTAL_MB NFILES
Files are spread over nested directories; about 2/3 of the bytes are text-like
(compressible), 1/3 random (like binaries).  Every 50th file gets a hardlink,
every 40th a symlink, every 30th a user xattr."""
import os
import random
import sys

root, total_mb, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
total = total_mb * 1024 * 1024
avg = total // nfiles
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(2000)]
text = b" ".join(rng.choice(words) for _ in range(400000)) + b"\n"
rand = os.urandom(8 * 1024 * 1024)

os.makedirs(root, exist_ok=True)
written = 0
for i in range(nfiles):
    d = os.path.join(root, "d%02d" % (i % 37), "s%03d" % (i % 211))
    os.makedirs(d, exist_ok=True)
    size = min(int(rng.expovariate(1.0 / avg)), 4 * 1024 * 1024)
    if i == nfiles - 1:
        size = max(0, total - written)
    src = rand if i % 3 == 0 else text
    off = rng.randrange(0, max(1, len(src) - min(size, len(src))))
    data = (src * (1 + size // len(src)))[off:off + size] if size > len(src) else src[off:off + size]
    p = os.path.join(d, "f%05d" % i)
    with open(p, "wb") as f:
        f.write(data)
    written += len(data)
    os.chmod(p, 0o755 if i % 7 == 0 else 0o644)
    if i % 50 == 0:
        os.link(p, p + ".hl")
    if i % 40 == 0:
        os.symlink("f%05d" % i, p + ".sl")
    if i % 30 == 0:
        os.setxattr(p, "user.bench", b"v%d" % i)
print("%d files, %d bytes" % (nfiles, written))
