"""Runtime differences in one place: the only module that asks which runtime it is."""

import gc
import os
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

# Some ports (ESP32) count time from 2000-01-01; everything in this library is true Unix/UTC seconds.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_ms():
    """Milliseconds since 1970-01-01 UTC by the board's clock, as an int.

    Integers throughout: ESP32 floats are single precision (about 2 minutes of resolution at 1.7e9).
    """
    if hasattr(time, "time_ns"):
        return time.time_ns() // 1000000 + EPOCH_OFFSET * 1000
    return int(time.time()) * 1000 + EPOCH_OFFSET * 1000


if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
else:
    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    def sleep_ms(ms):
        time.sleep(ms / 1000)


def urandom(n):
    return os.urandom(n)


def json_str(s):
    """A JSON string literal for s, with non-ASCII kept as UTF-8 (as MicroPython's json writes it)."""
    import json
    if MICROPYTHON:
        return json.dumps(s)
    return json.dumps(s, ensure_ascii=False)


def fsync_dir(path):
    """Best effort to make a rename durable; littlefs commits metadata on close, so a no-op there."""
    if MICROPYTHON:
        return
    try:
        fd = os.open(path or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(f):
    """Flush a file's buffers to the storage (CPython: fsync; MicroPython: flush)."""
    f.flush()
    if not MICROPYTHON:
        os.fsync(f.fileno())


def unload(*names):
    """Forget the on-demand modules mindconnect.<name> (sys.modules and the package's attribute), then
    collect: their code, names' objects and constants leave the heap until they are imported again."""
    pkg = sys.modules.get("mindconnect")
    for n in names:
        sys.modules.pop("mindconnect." + n, None)
        if pkg is not None and hasattr(pkg, n):
            delattr(pkg, n)
    gc.collect()
