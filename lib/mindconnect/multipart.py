"""Streaming multipart/mixed writer for the exchange endpoint (PROTOCOL.md Part A).

A body is made of items; each item is a multipart/related part holding a meta part and a payload part.
The exact length is computed first (for Content-Length), then the bytes are written through a write
callable: the body never exists whole in RAM. Payloads come from sources:

    BytesSource(b"...")                    bytes already in memory
    FileSource("/data/log.bin")            a file read with readinto through one small buffer
    ChunkSource(length, chunks)            chunks() yields bytes-like pieces adding up to length
                                           (called again for every write, e.g. on a retry)

A body object has .length, .content_type and .write_to(write): that is all http.py needs.
"""

import os

from mindconnect import jsonw
from mindconnect.compat import const, urandom
from mindconnect.errors import ConfigError, ProtocolError, msg

META_TYPE = b"application/vnd.siemens.mindsphere.meta+json"
_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# The wording of its errors, one line each, taken by msg(_W, line): one str constant, not one per message
# (in ROM form each str constant over 10 characters is an object of about 40 B in the heap; docs/AGENT.md).
_W = ("file not found: %s\n"  # 0
      "file %s shrank while it was being sent\n"
      "source gave more bytes than the %d declared\n"
      "source gave %d bytes, %d declared\n"
      "multipart boundaries are %d characters")
BOUNDARY_LEN = const(20)
_FILE_CHUNK = const(512)

_buf = None  # one read buffer for every FileSource, allocated on first use


def new_boundary():
    """20 random characters of [0-9A-Za-z]."""
    return bytes(_ALNUM[b % 62] for b in urandom(BOUNDARY_LEN))


def _file_buffer():
    global _buf
    if _buf is None:
        _buf = bytearray(_FILE_CHUNK)
    return _buf


class BytesSource:
    def __init__(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.data = data
        self.length = len(data)

    def write_to(self, write):
        write(self.data)


class FileSource:
    """A file streamed from flash; its size is taken now (again by stat() before each exchange: it may
    have changed since) and checked while writing."""

    def __init__(self, path):
        self.path = path
        self.stat()
        _file_buffer()  # now, not while a body is written: it lives on, below a request's garbage

    def stat(self):
        try:
            self.length = os.stat(self.path)[6]
        except OSError:
            raise ConfigError(msg(_W, 0) % self.path) from None

    def write_to(self, write):
        buf = _file_buffer()
        mv = memoryview(buf)
        left = self.length
        with open(self.path, "rb") as f:
            while left > 0:
                n = f.readinto(buf)
                if not n:
                    break
                if n > left:
                    n = left
                write(mv[:n])
                left -= n
        if left:
            raise ProtocolError(msg(_W, 1) % self.path)


class ChunkSource:
    """Pieces from a generator function, with their total length declared up front."""

    def __init__(self, length, chunks):
        self.length = length
        self.chunks = chunks

    def write_to(self, write):
        sent = 0
        for piece in self.chunks():
            sent += len(piece)
            if sent > self.length:
                raise ProtocolError(msg(_W, 2) % self.length)
            write(piece)
        if sent != self.length:
            raise ProtocolError(msg(_W, 3) % (sent, self.length))


def meta_json(payload_type, payload_version, details=None):
    """The meta part of an item (bytes)."""
    payload = [("type", payload_type), ("version", payload_version)]
    if details is not None:
        payload.append(("details", details))
    return jsonw.dumpb(jsonw.Obj(("type", "item"), ("version", "1.0"), ("payload", jsonw.Obj(*payload))))


class Item:
    """One exchange item: meta (type, version, details) and a payload of content_type from source."""

    def __init__(self, payload_type, payload_version, content_type, source, details=None):
        self.meta = meta_json(payload_type, payload_version, details)
        self.content_type = content_type.encode() if isinstance(content_type, str) else content_type
        self.source = source

    def wire_length(self):
        """Bytes this item takes in a body, framing included."""
        b = BOUNDARY_LEN
        # --B CRLF, related header (with boundary) CRLF, CRLF
        n = 2 + BOUNDARY_LEN + 2 + len(b"Content-Type: multipart/related; boundary=") + b + 2 + 2
        # --S CRLF, meta header CRLF CRLF, meta CRLF
        n += 2 + b + 2 + len(b"Content-Type: ") + len(META_TYPE) + 4 + len(self.meta) + 2
        # --S CRLF, payload header CRLF CRLF, payload CRLF, --S-- CRLF
        n += 2 + b + 2 + len(b"Content-Type: ") + len(self.content_type) + 4 + self.source.length + 2
        n += 2 + b + 4
        return n


# Bytes of a body besides its items: the closing delimiter --B-- CRLF.
BODY_OVERHEAD = 2 + BOUNDARY_LEN + 4


class MultipartBody:
    """A multipart/mixed body of items, with a new boundary per body and per item."""

    def __init__(self, items, boundary=None, item_boundaries=None):
        self.items = list(items)
        self.boundary = boundary or new_boundary()
        self.item_boundaries = list(item_boundaries) if item_boundaries else [new_boundary() for _ in self.items]
        for bnd in [self.boundary] + self.item_boundaries:
            if len(bnd) != BOUNDARY_LEN:
                raise ConfigError(msg(_W, 4) % BOUNDARY_LEN)
        self.length = BODY_OVERHEAD + sum(it.wire_length() for it in self.items)
        self.content_type = "multipart/mixed; boundary=" + self.boundary.decode()

    def write_to(self, write):
        outer = self.boundary
        for item, inner in zip(self.items, self.item_boundaries):
            write(b"--" + outer + b"\r\nContent-Type: multipart/related; boundary=" + inner + b"\r\n\r\n")
            write(b"--" + inner + b"\r\nContent-Type: " + META_TYPE + b"\r\n\r\n")
            write(item.meta)
            write(b"\r\n--" + inner + b"\r\nContent-Type: " + item.content_type + b"\r\n\r\n")
            item.source.write_to(write)
            write(b"\r\n--" + inner + b"--\r\n")
        write(b"--" + outer + b"--\r\n")
