# http.py over real TLS (transport.py) against the scripted HTTPS server of fixtures_http.py:
# keep-alive counted by the server, the transparent resend, response framings, limits and what
# the server receives (both runtimes). Broken responses: test_http_errors.py.
import hashlib

import dualtest
from mindconnect.errors import ConfigError, ConnectionClosed, ProtocolError
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("http_servers",)

# Above the default 64K: test_body_over_max_body_is_refused needs 62K (bisections over five tmp-path
# lengths, 2026-12-06), at or within 2 KB of the default, where any change to lib/ or to this module
# failed it. Not a device budget: that is test_agent_memory's and test_fw_app_memory's.
MPY_HEAPSIZE = "68K"


def _is_pattern(body, n):
    """True if body is what the server's /size, /chunked and /until-close send: bytes 0..255 repeating.

    Checked in place: a copy of the expected bytes would not fit beside the body in a 64K heap.
    """
    if len(body) != n:
        return False
    for i in range(n):
        if body[i] != i & 255:
            return False
    return True


def _pattern_sha(n):
    sha = hashlib.sha256()
    block = bytes(range(256))
    for _ in range(n // 256):
        sha.update(block)
    sha.update(block[:n % 256])
    return sha.digest()


def _client(timeout_ms=5000, **kw):
    transport = Transport(dualtest.read_bytes(dualtest.env("HTTPS_CA_DER")))
    client = HTTPClient(transport.connect, dualtest.env("HTTPS_HOST"), int(dualtest.env("HTTPS_PORT")),
                        timeout_ms=timeout_ms, **kw)
    return client, transport


def test_keep_alive_reuses_one_connection():
    c, t = _client()
    r1 = c.request("GET", "/")
    r2 = c.request("GET", "/size?n=3000")
    r3 = c.request("POST", "/echo", body=b"abc")
    assert (r1.status, r1.body) == (200, b"hello") and _is_pattern(r2.body, 3000)
    assert r3.json()["sha256"] == _hex(hashlib.sha256(b"abc").digest())
    assert r1.headers["x-conn"] == r2.headers["x-conn"] == r3.headers["x-conn"]
    assert [r.headers["x-req"] for r in (r1, r2, r3)] == ["1", "2", "3"]
    assert (c.connections, c.requests, t.connects, t.handshakes) == (1, 3, 1, 1)
    c.close()


def test_resends_once_when_the_idle_connection_was_closed():
    c, t = _client()
    r1 = c.request("GET", "/close-after")  # the server hangs up after answering, without saying so
    r2 = c.request("GET", "/size?n=10")
    assert (r1.body, r2.status) == (b"then gone", 200) and _is_pattern(r2.body, 10)
    assert r1.headers["x-conn"] != r2.headers["x-conn"] and r2.headers["x-req"] == "1"
    assert (c.connections, c.requests, t.handshakes) == (2, 3, 2)  # one request went out twice
    c.close()


class _Repeated:
    """A body of one piece written n times."""

    def __init__(self, piece, n):
        self.piece, self.n, self.length = piece, n, len(piece) * n

    def write_to(self, write):
        for _ in range(self.n):
            write(self.piece)


def test_resends_a_big_body_when_the_idle_connection_was_closed():
    # the server's close is seen while the body is written (CPython: ssl.SSLEOFError), not on reading
    c, t = _client()
    admin = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(dualtest.env("HTTP_PORT")))
    closed = admin.request("GET", "/_stats").json().get("https_closed", 0)
    assert c.request("GET", "/close-after").body == b"then gone"
    assert admin.request("GET", "/_stats?https_closed=%d" % (closed + 1)).json()["https_closed"] > closed
    admin.close()
    r = c.request("POST", "/echo", body=_Repeated(b"b" * 1000, 300))
    assert r.json()["length"] == 300000 and r.headers["x-req"] == "1"
    assert (c.connections, c.requests, t.handshakes) == (2, 3, 2)
    c.close()


def test_no_resend_on_a_fresh_connection_and_only_one_on_a_reused_one():
    c, _ = _client()
    e = dualtest.raises(ConnectionClosed, c.request, "GET", "/hangup")
    assert "before answering" in str(e) and (c.connections, c.requests) == (1, 1)
    c.request("GET", "/")
    dualtest.raises(ConnectionClosed, c.request, "GET", "/hangup")
    assert (c.connections, c.requests) == (3, 4)  # sent on the reused connection, resent once, then the error


def test_a_408_on_the_idle_connection_is_sent_again_on_a_new_one():
    # the server timed the kept-alive connection out with a 408 before the next request came: that 408
    # is not the answer to it (the server closes the connection only once the request arrived here,
    # so the client reads the 408 and not a closed connection)
    c, t = _client()
    admin = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(dualtest.env("HTTP_PORT")))
    go = admin.request("GET", "/_stats").json().get("stale_go", 0) + 1
    assert c.request("GET", "/stale-408?go=%d" % go).body == b"fresh"
    admin.request("GET", "/_poke?name=stale_go")
    assert admin.request("GET", "/_stats?stale_sent=%d" % go).json()["stale_sent"] >= go
    admin.close()
    r = c.request("GET", "/")
    assert (r.status, r.body, r.headers.get("x-req")) == (200, b"hello", "1")
    assert (c.connections, c.requests, t.handshakes) == (2, 3, 2)  # one request went out twice
    c.close()


def test_connection_close_from_the_server():
    c, _ = _client()
    r1 = c.request("GET", "/close")
    r2 = c.request("GET", "/")
    assert (r1.body, r1.headers["connection"], r2.body) == (b"bye", "close", b"hello")
    assert (c.connections, c.requests) == (2, 2)  # reconnected up front, nothing sent in vain
    c.close()


def test_content_length_chunked_and_until_close_bodies():
    c, _ = _client()
    r = c.request("GET", "/size?n=5000")
    assert _is_pattern(r.body, 5000) and r.headers["content-length"] == "5000"
    r = None  # a 64K heap holds one 5000-byte body and the collection of the next, not two
    r = c.request("GET", "/chunked?n=5000&chunk=700")
    assert _is_pattern(r.body, 5000) and r.headers["transfer-encoding"] == "chunked"
    r = c.request("GET", "/chunked?n=0")
    assert r.body == b""
    assert c.connections == 1  # the chunked bodies ended where they should: the connection is reusable
    r = c.request("GET", "/until-close?n=3000")
    assert _is_pattern(r.body, 3000) and c.connections == 1
    assert c.request("GET", "/").body == b"hello" and c.connections == 2
    c.close()


class Digest:
    """A response sink that keeps only a hash and the size of each piece."""

    def __init__(self):
        self.sha = hashlib.sha256()
        self.sizes = []

    def add(self, piece):
        self.sizes.append(len(piece))
        self.sha.update(piece)


def test_sink_gets_the_body_in_pieces_without_a_limit():
    c, _ = _client(max_body=1000)
    for path in ("/chunked?n=50000&chunk=3000", "/size?n=50000", "/until-close?n=50000"):
        d = Digest()
        r = c.request("GET", path, sink=d.add)
        assert r.body is None and sum(d.sizes) == 50000 and max(d.sizes) <= 1026
        assert d.sha.digest() == _pattern_sha(50000)
    assert dualtest.raises(ConfigError, r.json)
    c.close()


def test_body_over_max_body_is_refused():
    c, _ = _client(max_body=4096)
    for path in ("/size?n=4097", "/chunked?n=5000", "/until-close?n=5000"):
        e = dualtest.raises(ProtocolError, c.request, "GET", path)
        assert "4096" in str(e) and "max_body" in str(e)
    assert _is_pattern(c.request("GET", "/size?n=5000", max_body=5000).body, 5000)
    assert _is_pattern(c.request("GET", "/size?n=4096").body, 4096)
    c.close()


def test_an_error_answer_over_max_body_is_cut_not_refused():
    # a proxy's 413 with a big HTML page: its status is the verdict (the agent splits the batch); a
    # ProtocolError had the agent send the same batch again, to be refused again
    c, _ = _client(max_body=1000)
    for path in ("/refuse?n=5000", "/refuse?n=5000&chunked=1", "/refuse?n=1000"):
        r = c.request("POST", path, body=b"x")
        assert r.status == 413 and _is_pattern(r.body, 1000), path
    assert c.connections == 3  # the rest of a page cut short is not read: its connection is closed
    assert c.request("GET", "/").body == b"hello" and c.connections == 3  # a whole one keeps it
    c.close()


def test_head_204_304_have_no_body_and_1xx_is_skipped():
    c, _ = _client()
    r = c.request("HEAD", "/size?n=4000")
    assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "4000")
    for code in (204, 304):
        r = c.request("GET", "/status?code=%d" % code)
        assert (r.status, r.body) == (code, b"")
    r = c.request("POST", "/continue", body=b"x")
    assert (r.status, r.reason, r.body) == (201, "Created", b"made")
    assert c.connections == 1 and r.headers["x-req"] == "4"
    c.close()


def test_headers_are_case_insensitive_and_repeats_joined():
    c, _ = _client()
    r = c.request("GET", "/headers")
    assert r.headers["x-dup"] == "a, b" and r.headers["content-type"] == "text/plain"
    assert r.headers["date"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    c.close()


class Body:
    """A request body the way multipart.MultipartBody is one: .length, .content_type, .write_to."""

    content_type = "multipart/mixed; boundary=abc"

    def __init__(self, pieces):
        self.pieces = pieces
        self.length = sum(len(p) for p in pieces)

    def write_to(self, write):
        for p in self.pieces:
            write(p)


def test_what_the_server_receives():
    c, _ = _client(user_agent="mindconnect-node/0.1")
    body = Body([b"reading %d;" % i for i in range(40)] + [b"x" * 3000])
    want = hashlib.sha256()
    body.write_to(want.update)
    r = c.request("POST", "/echo?x=1", headers={"Accept": "application/json"}, body=body)
    echo = r.json()
    got = {}
    for name, value in echo["headers"]:
        got[name] = value
    assert (echo["method"], echo["target"], echo["length"]) == ("POST", "/echo?x=1", body.length)
    assert echo["sha256"] == _hex(want.digest())
    assert got["Host"] == "localhost:" + dualtest.env("HTTPS_PORT")
    assert got["Content-Type"] == body.content_type and got["Content-Length"] == str(body.length)
    assert got["Accept"] == "application/json" and got["User-Agent"] == "mindconnect-node/0.1"
    echo = c.request("PUT", "/echo", headers=[("content-type", "text/csv")], body="a,b").json()
    got = dict((n.lower(), v) for n, v in echo["headers"])
    assert (got["content-type"], got["content-length"], echo["length"]) == ("text/csv", "3", 3)
    echo = c.request("POST", "/echo").json()
    assert ["Content-Length", "0"] in echo["headers"]
    c.close()


def _hex(digest):
    return "".join("%02x" % b for b in digest)
