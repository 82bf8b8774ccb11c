# Flat memory: a 10 MB multipart body streamed through http.py over TLS to the local HTTPS server
# peaks within 2 KB of a 10 KB body (heap sampled on the write path; both runtimes, 64K heap).
import dualtest
from mindconnect import multipart
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("http_servers",)
PIECE = 1024


class SampledStream:
    """Wraps a transport stream; samples the heap every few writes and counts what went out."""

    def __init__(self, stream, heap):
        self.stream = stream
        self.heap = heap
        self.writes = 0
        self.sent = 0

    def write(self, buf):
        self.writes += 1
        self.sent += len(buf)
        if self.writes % 32 == 1:
            self.heap.sample()
        self.stream.write(buf)

    def readinto(self, buf):
        return self.stream.readinto(buf)

    def close(self):
        self.stream.close()


def _post(size):
    transport = Transport(dualtest.read_bytes(dualtest.env("HTTPS_CA_DER")))
    piece = b"m" * PIECE
    streams = []

    def chunks():
        for _ in range(size // PIECE):
            yield piece

    body = multipart.MultipartBody([multipart.Item("file", "1.0", "application/octet-stream",
                                                   multipart.ChunkSource(size, chunks))])
    with dualtest.HeapPeak() as heap:
        def connect(host, port, timeout_ms):
            streams.append(SampledStream(transport.connect(host, port, timeout_ms), heap))
            return streams[0]
        client = HTTPClient(connect, dualtest.env("HTTPS_HOST"), int(dualtest.env("HTTPS_PORT")), timeout_ms=10000)
        resp = client.request("POST", "/echo", body=body)
        client.close()
    echo = resp.json()
    assert (resp.status, echo["length"], streams[0].sent - echo["length"] > 0) == (200, body.length, True)
    assert len(streams) == 1 and streams[0].sent < body.length + 400  # the body and a short header
    return heap.peak, streams[0].writes


def test_10mb_body_costs_the_same_peak_as_10kb():
    _post(10 * 1024)  # first use: imports and caches inside ssl would count against the small body
    small, _ = _post(10 * 1024)
    big, writes = _post(10 * 1024 * 1024)
    assert big - small <= 2048, (small, big)
    assert writes <= 10 * 1024 + 2  # 1 KB pieces went out as whole buffers, not one write per piece
