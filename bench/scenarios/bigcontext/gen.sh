#!/bin/sh
# gen.sh DIR — data/gNNN/itemNNNNN.txt: 200 directories of 100 files,
# 2,000 to 18,000 bytes each (~200 MB), hex text of a seeded generator
# (compresses about 2:1).  The same bytes on every machine.
set -eu
exec /usr/bin/python3 - "$1" <<'PY'
import os, random, sys
root = os.path.join(sys.argv[1], "data")
gen = random.Random(7349)
for g in range(200):
    d = os.path.join(root, "g%03d" % g)
    os.makedirs(d, exist_ok=True)
    for i in range(100):
        size = gen.randint(2000, 18000)
        text = gen.randbytes(size // 2 + 1).hex()[:size]
        with open(os.path.join(d, "item%05d.txt" % (g * 100 + i)), "w") as f:
            f.write(text)
PY
