"""What dual-runtime tests need from their runner, on CPython and MicroPython alike."""

import gc
import os
import sys

MICROPYTHON = sys.implementation.name == "micropython"


class Skip(Exception):
    pass


def skip(reason):
    if MICROPYTHON:
        raise Skip(reason)
    import pytest
    pytest.skip(reason)


def env(name, default=None):
    v = os.getenv(name)
    return default if v is None else v


def tmpdir():
    """A fresh folder for this test (made by the host side)."""
    return os.getenv("DUALTEST_TMP")


def raises(exc_type, fn, *args, **kw):
    """Call fn and return the exception it raised; fail if it raised nothing or something else."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s was not raised" % exc_type.__name__)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def urandom(n):
    return os.urandom(n)


class HeapPeak:
    """Peak heap in use while a workload runs.

    MicroPython has no peak counter for the GC heap, so the workload calls sample() at its I/O points
    (e.g. from a counting stream); each sample collects garbage and reads what is still alive, so the
    peak is the most live data held at any I/O point. On CPython tracemalloc's peak is used instead.
    """

    def __init__(self):
        self.peak = 0
        self.samples = 0

    def __enter__(self):
        gc.collect()
        if MICROPYTHON:
            self.base = gc.mem_alloc()
        else:
            import tracemalloc
            tracemalloc.start()
            self.base = 0
        return self

    def sample(self):
        self.samples += 1
        if MICROPYTHON:
            gc.collect()
            used = gc.mem_alloc() - self.base
            if used > self.peak:
                self.peak = used

    def __exit__(self, *exc):
        if not MICROPYTHON:
            import tracemalloc
            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return False
