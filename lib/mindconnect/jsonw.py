"""Compact JSON with keys in a fixed order, the same bytes on CPython and MicroPython.

MicroPython dicts do not keep insertion order and its json.dumps puts spaces after ':' and ','; the
wire form (PROTOCOL.md Part A) needs compact JSON with keys in the documented order. Use Obj for
objects whose key order matters; plain dicts are written in their iteration order.
"""

from mindconnect.compat import json_str


class Obj:
    """A JSON object written with its keys in the given order: Obj(("a", 1), ("b", [2]))."""

    def __init__(self, *pairs):
        self.pairs = pairs

    def get(self, key, default=None):
        for k, v in self.pairs:
            if k == key:
                return v
        return default


def _enc(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(json_str(v))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        out.append(repr(v))
    elif isinstance(v, Obj):
        _obj(v.pairs, out)
    elif isinstance(v, dict):
        _obj(v.items(), out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        first = True
        for x in v:
            if not first:
                out.append(",")
            first = False
            _enc(x, out)
        out.append("]")
    else:
        raise TypeError("cannot write %s as JSON" % type(v).__name__)


def _obj(pairs, out):
    out.append("{")
    first = True
    for k, x in pairs:
        if not first:
            out.append(",")
        first = False
        out.append(json_str(k))
        out.append(":")
        _enc(x, out)
    out.append("}")


def dumps(v):
    """Compact JSON text of v (str)."""
    out = []
    _enc(v, out)
    return "".join(out)


def dumpb(v):
    """Compact JSON of v as UTF-8 bytes."""
    return dumps(v).encode()
