#!/usr/bin/env python3
# damage.py IN OUTDIR TAG SEED: byte-level damage of a trace: truncations, bit flips, zeroed and
# duplicated spans; one file per variant.
import random, sys, os
src, out, tag, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b = open(src, 'rb').read(); n = len(b); r = random.Random(seed)
def w(name, data): open(os.path.join(out, f"{tag}-{name}.trace"), 'wb').write(data)
for i in range(3): c = r.randrange(1, n); w(f"trunc{i}", b[:c])
w("trunc-tail8", b[:n-8]); w("trunc-tail1", b[:n-1])
for i in range(3):
    d = bytearray(b); 
    for _ in range(1 + i * 3): p = r.randrange(0, n); d[p] ^= 1 << r.randrange(8)
    w(f"flip{i}", bytes(d))
d = bytearray(b); p = r.randrange(n // 4, n); d[p:p+4096] = bytes(len(d[p:p+4096])); w("zero4k", bytes(d))
p = r.randrange(n // 4, n - 8192); w("dup8k", b[:p+8192] + b[p:])
p = r.randrange(n // 4, n - 8192); w("cut8k", b[:p] + b[p+8192:])
