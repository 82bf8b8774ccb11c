"""RS256 signing workloads for tools/bench/rsa_bench.py, run by MicroPython (compiled) or CPython.

    micropython -X heapsize=NK -m rsa_workload MODE KEY_FILE [COUNT]

MODE load: import mindconnect.rsa and load the key; sign: the same, then one signature; both print
"@@OK" only when they completed (the host bisects over the heap size). MODE time: COUNT signatures,
prints "@@US <sign> <crt> <check>", the fastest of each in microseconds: a whole signature, its two
CRT exponentiations, and its check with the public exponent.
"""

import sys

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter_ns

    def ticks_us():
        return perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


def timed(fn, *args):
    t = ticks_us()
    fn(*args)
    return ticks_diff(ticks_us(), t)


def crt(key, m):
    pow(m % key._p, key._dp, key._p)
    pow(m % key._q, key._dq, key._q)


def main(mode, path, count=5):
    from mindconnect import rsa
    key = rsa.load(path)
    if mode == "load":
        print("@@OK")
        return
    if mode == "sign":
        key.sign_sha256(b"header.claims")
        print("@@OK")
        return
    m = key._n - 12345  # an input as wide as a padded SHA-256 block
    sign = min(timed(key.sign_sha256, b"header.claims" + bytes((i,))) for i in range(count))
    half = min(timed(crt, key, m) for _ in range(count))
    check = min(timed(pow, m, key._e, key._n) for _ in range(count))
    print("@@US", sign, half, check)


main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
