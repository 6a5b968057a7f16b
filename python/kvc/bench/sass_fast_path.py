"""Instructions on the fast path of each loop of a kernel, from its SASS (cuobjdump -sass).

A loop is a conditional backward branch (an unconditional one is a slow block jumping back
into its loop). Its fast path is the shortest path, in instructions, from the
loop head to that branch that avoids every block holding an unpredicated global load: in the
encoded decode kernels those are the slow paths (the canonical tables and the re-read of the
stream), while the refill's load is predicated. Predicated instructions count, as a warp
issues them whether or not a lane runs them. Static counts: a statement about the code the
compiler emitted, not a measurement (ncu's executed-instruction count is that).

usage: python3 -m kvc.bench.sass_fast_path KERNEL.sass [--kernel SUBSTR] [--show]
(bench/gpu/sass-fast-path.sh makes the SASS from PTX with ptxas and cuobjdump)
"""
import argparse
import heapq
import re
from collections import Counter

_INS = re.compile(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_BRA = re.compile(r"BRA\s+(?:!?U?P[T\d],\s*)?0x([0-9a-f]+)")


def parse(text, kernel=""):
    """{function name: [(address, instruction text)]} for functions whose name has `kernel`."""
    funcs, cur = {}, None
    for line in text.split("\n"):
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1) if kernel in m.group(1) else None
            if cur:
                funcs[cur] = []
            continue
        m = _INS.match(line)
        if m and cur:
            funcs[cur].append((int(m.group(1), 16), m.group(2)))
    return funcs


def _target(ins):
    m = _BRA.search(ins)
    return int(m.group(1), 16) if m and "BRA" in ins else None


def _conditional(ins):
    return ins.startswith("@") or re.search(r"BRA\s+!?U?P\d,", ins) is not None


def _slow(ins):
    return "LDG" in ins and not ins.startswith("@")


def fast_paths(ins):
    """[(head address, branch address, loop size, fast-path instructions)] per loop."""
    index = {a: i for i, (a, _) in enumerate(ins)}
    out = []
    for hi, (a, t) in enumerate(ins):
        x = _target(t)
        if x is None or x > a or x not in index or not _conditional(t):
            continue
        lo = index[x]
        dist, prev, pq = {lo: 1}, {}, [(1, lo)]
        while pq:
            d, j = heapq.heappop(pq)
            if d > dist.get(j, 1 << 30) or j == hi:
                continue
            t2 = ins[j][1]
            y = _target(t2)
            nxt = []
            ends = t2.split()[0] in ("EXIT", "RET") or (y is not None and not _conditional(t2))
            if not ends and j + 1 <= hi:
                nxt.append(j + 1)
            if y is not None and y in index and lo <= index[y] <= hi:
                nxt.append(index[y])
            for n in nxt:
                if not _slow(ins[n][1]) and d + 1 < dist.get(n, 1 << 30):
                    dist[n], prev[n] = d + 1, j
                    heapq.heappush(pq, (d + 1, n))
        if hi in dist:
            path = [hi]
            while path[-1] != lo:
                path.append(prev[path[-1]])
            out.append((ins[lo][0], a, hi - lo + 1, [ins[j] for j in reversed(path)]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sass")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--show", action="store_true", help="print the fast-path instructions")
    a = ap.parse_args(argv)
    for name, ins in parse(open(a.sass).read(), a.kernel).items():
        print(name)
        for head, br, size, path in fast_paths(ins):
            ops = Counter(re.sub(r"^@!?U?P\w+\s+", "", t).split()[0] for _, t in path)
            top = ", ".join("%s %d" % kv for kv in ops.most_common(6))
            print("  loop %#x-%#x (%d instructions): fast path %d (%s)" % (head, br, size,
                                                                         len(path), top))
            if a.show:
                for addr, t in path:
                    print("      %#06x %s" % (addr, t))


if __name__ == "__main__":
    main()
