"""A one-line picture of a spool folder on the host, for the soak's node.log (--trace-spool).

    cur=(113, 2296) seg113(3969)[0:01-21T05:52:09 279:01-21T06:22:09 ...] seg114(452)[0:01-21T10:26:52]

The cursor (segment, offset), then each segment with its size and its records as offset:timestamp
(month-day and time of the reading's "timestamp"), "!BAD" after a record whose length or CRC fails and
"tail@off/size" when bytes follow the last whole record. Reads the format of lib/mindconnect/spool.py
(u16 length, u32 CRC-32 of the length bytes and the record) without importing it.
"""

import binascii
import os
import re
import struct

_TS = re.compile(rb'"timestamp":"\d{4}-([^".]+)')


def cursor(folder):
    try:
        with open(os.path.join(folder, "cur"), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if len(raw) == 16 and binascii.crc32(raw[:12]) == struct.unpack("<I", raw[12:])[0]:
        return struct.unpack("<II", raw[:8])  # then the drop count
    if len(raw) == 12 and binascii.crc32(raw[:8]) == struct.unpack("<I", raw[8:])[0]:
        return struct.unpack("<II", raw[:8])
    return "corrupt"


def records(data):
    """(offset, timestamp text or '?', ok) of each record, and the offset where the walk stopped."""
    out = []
    off = 0
    while off + 6 <= len(data):
        n, crc = struct.unpack("<HI", data[off:off + 6])
        body = data[off + 6:off + 6 + n]
        ok = n > 0 and len(body) == n and binascii.crc32(data[off:off + 2] + body) == crc
        m = _TS.search(body)
        out.append((off, m.group(1).decode() if m else "?", ok))
        if not ok:
            return out, off
        off += 6 + n
    return out, off


def dump(folder):
    if not os.path.isdir(folder):
        return "no spool"
    parts = ["cur=%s" % (cursor(folder),)]
    for n in sorted(int(name) for name in os.listdir(folder) if name.isdigit()):
        with open(os.path.join(folder, str(n)), "rb") as f:
            data = f.read()
        recs, end = records(data)
        shown = ["%d:%s%s" % (off, ts, "" if ok else "!BAD") for off, ts, ok in recs]
        if end != len(data) and (not recs or recs[-1][2]):
            shown.append("tail@%d/%d" % (end, len(data)))
        parts.append("seg%d(%d)[%s]" % (n, len(data), " ".join(shown)))
    return " ".join(parts)
