#!/usr/bin/env python3
"""Attribute the cost of one function of a callgrind profile, with everything inlined into it,
to the outer frames of each instruction's inline chain (addr2line -i).

Usage: analysis-attr.py CALLGRIND_OUT BINARY FUNCTION_SUBSTRING DEPTH [ROWS]

CALLGRIND_OUT must come from `valgrind --tool=callgrind --dump-instr=yes`. Each instruction of
the functions whose name contains FUNCTION_SUBSTRING (in BINARY's object) is keyed by the
DEPTH outermost frames of its inline chain ("callee line <- caller line"); a call's inclusive
cost is keyed the same way with the callee's name. Addresses are taken as file offsets (a
PIE that valgrind maps at 0, as here; adjust BASE otherwise).
"""
import collections
import re
import subprocess
import sys

BASE = 0

out, binary, fnsub, depth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = int(sys.argv[5]) if len(sys.argv) > 5 else 60
names = {}


def name(kind, s):
    """callgrind's name compression: "(n) name" defines, "(n)" refers."""
    m = re.match(r'\((\d+)\)(?: (.*))?', s)
    if not m:
        return s
    k = (kind, m.group(1))
    if m.group(2):
        names[k] = m.group(2)
    return names.get(k, '?')


cost = collections.Counter()   # address -> own cost
calls = collections.Counter()  # (address, callee) -> inclusive cost of the calls made there
fn = ob = cfn = ''
addr = 0
in_call = False
for line in open(out):
    line = line.rstrip('\n')
    if line.startswith('ob='):
        ob = name('ob', line[3:])
    elif line.startswith('fn='):
        fn = name('fn', line[3:])
    elif line.startswith(('fl=', 'fi=', 'fe=')):
        name('fl', line[3:])
    elif line.startswith('cob='):
        name('ob', line[4:])
    elif line.startswith(('cfi=', 'cfl=')):
        name('fl', line[4:])
    elif line.startswith('cfn='):
        cfn = name('fn', line[4:])
    elif line.startswith('calls='):
        in_call = True
    elif line and line[0] in '0123456789+-*':
        parts = line.split()
        a = parts[0]
        if a.startswith('0x'):
            addr = int(a, 16)
        elif a.startswith('+'):
            addr += int(a[1:])
        elif a.startswith('-'):
            addr -= int(a[1:])
        c = int(parts[2]) if len(parts) > 2 else 0
        if fnsub in fn and binary.split('/')[-1] in ob:
            if in_call:
                calls[(addr, cfn)] += c
            else:
                cost[addr] += c
        in_call = False

addrs = sorted(set(cost) | {a for a, _ in calls})
r = subprocess.run(['addr2line', '-i', '-f', '-C', '-e', binary, '-a'],
                   input='\n'.join(hex(a - BASE) for a in addrs),
                   capture_output=True, text=True).stdout.split('\n')
chains = {}
cur = None
i = 0
while i < len(r):
    if r[i].startswith('0x'):
        cur = int(r[i], 16) + BASE
        chains[cur] = []
        i += 1
    elif cur is not None and i + 1 < len(r):
        loc = re.sub(r'.*/(src|library)/', '', r[i + 1])
        chains[cur].append(re.sub(r' \(discriminator.*', '', loc))
        i += 2
    else:
        i += 1


def key(a):
    chain = chains.get(a, [])  # innermost first
    return ' <- '.join(chain[::-1][:depth][::-1]) if chain else '?'


total = collections.Counter()
for a in addrs:
    total[key(a)] += cost.get(a, 0)
for (a, callee), c in calls.items():
    total[key(a) + '  CALL ' + callee[:60]] += c
print('total', sum(total.values()))
for k, c in total.most_common(rows):
    print(f'{c:>13,} {100 * c / max(1, sum(total.values())):5.1f}%  {k}')
