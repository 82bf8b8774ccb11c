# The streaming multipart writer: exact bytes of shared/vectors, Content-Length equal to what is
# written for every source kind, and flat memory whatever the body size (both runtimes).
import hashlib
import json

import dualtest
from mindconnect import jsonw, multipart
from mindconnect.errors import ConfigError, ProtocolError

HOST_FIXTURES = ("vectors_dir",)


class Sink:
    """Collects written bytes (or only counts and hashes them, for big bodies)."""

    def __init__(self, keep=True, heap=None):
        self.keep = keep
        self.parts = []
        self.n = 0
        self.writes = 0
        self.sha = hashlib.sha256()
        self.heap = heap

    def write(self, b):
        self.n += len(b)
        self.writes += 1
        self.sha.update(b)
        if self.keep:
            self.parts.append(bytes(b))
        if self.heap is not None and self.writes % 16 == 0:
            self.heap.sample()

    def value(self):
        return b"".join(self.parts)


def _ordered(d, order):
    return jsonw.Obj(*[(k, d[k]) for k in order])


def test_vector_body_exact():
    vdir = dualtest.env("VECTORS_DIR")
    with open(vdir + "/exchange_timeseries_event.json") as f:
        spec = json.load(f)
    ts = [jsonw.Obj(("timestamp", r["timestamp"]),
                    ("values", [_ordered(v, ("dataPointId", "value", "qualityCode")) for v in r["values"]]))
          for r in spec["timeseries"]]
    ev = [jsonw.Obj(("id", e["id"]), ("timestamp", e["timestamp"]), ("severity", e["severity"]),
                    ("description", e["description"]), ("type", e["type"]), ("version", e["version"]),
                    ("details", _ordered(e["details"], ("dataPointId", "value", "limit"))))
          for e in spec["event"]]
    items = [
        multipart.Item("standardTimeSeries", "1.0", "application/json",
                       multipart.BytesSource(jsonw.dumpb(ts)), details=jsonw.Obj(("configurationId", "cfg-1"))),
        multipart.Item("businessEvent", "1.0", "application/json", multipart.BytesSource(jsonw.dumpb(ev))),
    ]
    b = spec["boundaries"]
    body = multipart.MultipartBody(items, boundary=b["request"].encode(),
                                   item_boundaries=[x.encode() for x in b["items"]])
    sink = Sink()
    body.write_to(sink.write)
    want = dualtest.read_bytes(vdir + "/" + spec["body_file"])
    assert sink.value() == want
    assert body.length == len(want) == int(spec["request_headers"]["Content-Length"])
    assert body.content_type == spec["request_headers"]["Content-Type"]


def test_length_matches_every_source_kind():
    d = dualtest.tmpdir()
    path = d + "/blob.bin"
    dualtest.write_bytes(path, bytes(range(256)) * 7 + b"tail")
    gen_pieces = [b"abc", bytearray(b"defg"), memoryview(b"0123456789")[2:8]]
    items = [
        multipart.Item("custom", "2.0", "text/plain", multipart.BytesSource("héllo")),
        multipart.Item("file", "1.0", "application/octet-stream", multipart.FileSource(path),
                       details=jsonw.Obj(("fileName", "blob.bin"))),
        multipart.Item("custom", "1.0", "application/x-stuff",
                       multipart.ChunkSource(13, lambda: iter(gen_pieces))),
        multipart.Item("file", "1.0", "application/octet-stream", multipart.BytesSource(b"")),
    ]
    body = multipart.MultipartBody(items)
    sink = Sink()
    body.write_to(sink.write)
    out = sink.value()
    assert len(out) == body.length
    assert out.endswith(b"--" + body.boundary + b"--\r\n")
    assert out.count(b"\r\n--" + body.boundary) == 4  # 3 after the first item + the closing one
    assert bytes(range(256)) * 7 + b"tail" in out and b"abcdefg234567" in out
    # a new boundary per request and per item, 20 characters of [0-9A-Za-z]
    bnds = [body.boundary] + body.item_boundaries
    assert len(set(bnds)) == 5
    for bnd in bnds:
        assert len(bnd) == 20 and all(c in multipart._ALNUM for c in bnd)


def test_source_lying_about_its_length_is_an_error():
    short = multipart.ChunkSource(10, lambda: iter([b"12345"]))
    long_ = multipart.ChunkSource(3, lambda: iter([b"12345"]))
    for src in (short, long_):
        body = multipart.MultipartBody([multipart.Item("custom", "1.0", "a/b", src)])
        dualtest.raises(ProtocolError, body.write_to, Sink().write)
    dualtest.raises(ConfigError, multipart.FileSource, dualtest.tmpdir() + "/missing.bin")


def _stream_file(size):
    path = dualtest.tmpdir() + "/big.bin"
    chunk = b"0123456789abcdef" * 64
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(chunk[:left] if left < len(chunk) else chunk)
            left -= len(chunk)
    body = multipart.MultipartBody([multipart.Item("file", "1.0", "application/octet-stream",
                                                   multipart.FileSource(path))])
    with dualtest.HeapPeak() as heap:
        sink = Sink(keep=False, heap=heap)
        body.write_to(sink.write)
    assert sink.n == body.length
    return heap.peak


def test_memory_flat_10k_vs_10m_file():
    small = _stream_file(10 * 1024)
    big = _stream_file(10 * 1024 * 1024)
    assert big - small <= 2048, (small, big)
