# http.py over a scripted in-memory stream: the exact request bytes, coalescing of small body
# writes, line limits at their boundary, responses dribbling in one byte per read, and refusals
# before anything is sent (both runtimes). Real sockets and TLS: test_http_server.py.
import dualtest
from mindconnect.errors import ConfigError, ConnectionClosed, ProtocolError
from mindconnect.http import MAX_LINE, WRITE_BUF, HTTPClient, Response

# Above the default 64K: test_small_writes_are_coalesced_into_full_buffers needs 63K (bisections over five tmp-path
# lengths, 2026-12-06), at or within 2 KB of the default, where any change to lib/ or to this module
# failed it. Not a device budget: that is test_agent_memory's and test_fw_app_memory's.
MPY_HEAPSIZE = "68K"


class ScriptedStream:
    """Records writes; readinto hands out the scripted response at most `step` bytes at a time."""

    def __init__(self, response, step=4096):
        self.response = response
        self.pos = 0
        self.step = step
        self.writes = []
        self.closed = False

    def write(self, buf):
        self.writes.append(bytes(buf))

    def readinto(self, buf):
        n = min(len(buf), self.step, len(self.response) - self.pos)
        buf[:n] = self.response[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        self.closed = True


class Factory:
    """A connect() that gives out scripted streams, one per connection."""

    def __init__(self, *responses, step=4096):
        self.streams = [ScriptedStream(r, step) for r in responses]
        self.calls = []

    def connect(self, host, port, timeout_ms):
        self.calls.append((host, port, timeout_ms))
        return self.streams[len(self.calls) - 1]


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class TinyWritesBody:
    """A body whose writer makes one write per byte, like a careless generator would."""

    content_type = "application/octet-stream"

    def __init__(self, n, declared=None):
        self.n = n
        self.length = n if declared is None else declared

    def write_to(self, write):
        one = b"x"
        for _ in range(self.n):
            write(one)


def test_exact_request_bytes():
    f = Factory(OK)
    c = HTTPClient(f.connect, "gw.example", 443, timeout_ms=1234, user_agent="node/1")
    r = c.request("POST", "/api/x?a=1", headers=[("Authorization", "Bearer t0k"), ("Accept", "*/*")], body="hé")
    assert (r.status, r.reason, r.body) == (200, "OK", b"ok")
    assert f.calls == [("gw.example", 443, 1234)]
    assert b"".join(f.streams[0].writes) == (
        b"POST /api/x?a=1 HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer t0k\r\nAccept: */*\r\n"
        b"User-Agent: node/1\r\nContent-Length: 3\r\n\r\nh\xc3\xa9")
    assert len(f.streams[0].writes) == 1  # head and a small body leave in one write


def test_small_writes_are_coalesced_into_full_buffers():
    f = Factory(OK)
    c = HTTPClient(f.connect, "gw.example", 8443)
    c.request("PUT", "/f", headers={"Content-Type": "text/plain"}, body=TinyWritesBody(5000))
    writes = f.streams[0].writes
    out = b"".join(writes)
    head = b"PUT /f HTTP/1.1\r\nHost: gw.example:8443\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n"
    assert out == head + b"x" * 5000
    assert [len(w) for w in writes[:-1]] == [WRITE_BUF] * (len(writes) - 1) and len(writes[-1]) <= WRITE_BUF
    # a big piece goes straight through after topping up the buffer
    f = Factory(OK)
    HTTPClient(f.connect, "h").request("POST", "/", body=b"y" * 5000)
    head = len(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n")
    assert [len(w) for w in f.streams[0].writes] == [WRITE_BUF, head + 5000 - WRITE_BUF]


def test_refused_before_anything_is_sent():
    f = Factory(OK, OK)
    c = HTTPClient(f.connect, "h")
    e = dualtest.raises(ConfigError, c.request, "GET", "/", headers=[("Authorization", "Bearer t0k\r\nX: y")])
    assert "t0k" not in str(e)
    dualtest.raises(ConfigError, c.request, "GET", "/a b")
    assert c.connections == 0
    e = dualtest.raises(ProtocolError, c.request, "POST", "/", body=TinyWritesBody(5, declared=6))
    assert "5" in str(e) and "6" in str(e) and f.streams[0].closed and c.connections == 1


def test_a_response_arriving_one_byte_at_a_time():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
               b"3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n")
    f = Factory(OK + chunked + OK, step=1)
    c = HTTPClient(f.connect, "h")
    assert [c.request("GET", "/").body for _ in range(3)] == [b"ok", b"abc0123456789abcdef", b"ok"]
    assert c.connections == 1


def test_line_limit_boundary():
    def with_header(n):
        return b"HTTP/1.1 200 OK\r\nX: " + b"v" * (n - 3) + b"\r\nContent-Length: 0\r\n\r\n"
    bare_lf = with_header(MAX_LINE + 1).replace(b"\r\nContent", b"\nContent")
    f = Factory(with_header(MAX_LINE), with_header(MAX_LINE + 1), bare_lf, step=700)
    c = HTTPClient(f.connect, "h")
    assert len(c.request("GET", "/").headers["x"]) == MAX_LINE - 3
    for stream in f.streams[1:]:
        e = dualtest.raises(ProtocolError, c.request, "GET", "/")
        assert "longer than %d" % MAX_LINE in str(e) and stream.closed


def test_more_bytes_than_declared_drop_the_connection():
    f = Factory(OK + b"junk", OK)
    c = HTTPClient(f.connect, "h")
    assert c.request("GET", "/").body == b"ok" and f.streams[0].closed
    assert c.request("GET", "/").body == b"ok" and c.connections == 2


def test_eof_on_a_fresh_connection_is_not_resent():
    f = Factory(b"", OK)
    c = HTTPClient(f.connect, "h")
    e = dualtest.raises(ConnectionClosed, c.request, "GET", "/")
    assert "before answering" in str(e) and (c.connections, c.requests) == (1, 1)


def test_a_408_is_resent_only_from_a_reused_connection():
    stale = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    f = Factory(stale, OK + stale, OK + stale, OK, step=len(OK))  # step: the 408 is not read with the OK
    c = HTTPClient(f.connect, "h")
    assert c.request("GET", "/").status == 408 and (c.connections, c.requests) == (1, 1)  # a fresh one's
    assert c.request("GET", "/").body == b"ok" and c.request("GET", "/").body == b"ok"  # then a resend
    assert (c.connections, c.requests) == (3, 4)
    # a request that must not go twice as it is (a signed assertion): ConnectionClosed, as for a close
    e = dualtest.raises(ConnectionClosed, c.request, "POST", "/", body=b"x", resend=False)
    assert "408" in str(e) and (c.connections, c.requests) == (3, 5) and f.streams[2].closed


def test_a_content_length_that_is_not_a_plain_number_is_a_protocol_error():
    # "²" is a digit to CPython's str.isdigit, not to int(): a ValueError came out of request()
    for value in (b"\xc2\xb2", b"-2", b"+2", b"2, 2", b"0x2", b""):
        f = Factory(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nok")
        e = dualtest.raises(ProtocolError, HTTPClient(f.connect, "h").request, "GET", "/")
        assert "bad Content-Length" in str(e) and f.streams[0].closed


def test_response_repr_and_json():
    r = Response(200, "OK", {"content-type": "application/json"}, b'{"access_token":"eyJsecret"}')
    assert r.json()["access_token"] == "eyJsecret"
    assert "eyJ" not in repr(r) and "200" in repr(r)
    e = dualtest.raises(ProtocolError, Response(502, "Bad Gateway", {}, b"<html>").json)
    assert "502" in str(e)


def test_a_reason_phrase_that_is_not_utf8_is_taken():
    # RFC 9112 allows obs-text (bytes 0x80-0xFF, e.g. Latin-1) in the reason phrase: the response counts
    f = Factory(b"HTTP/1.1 201 Cr\xe9\xe9\r\nContent-Length: 2\r\n\r\nok")
    r = HTTPClient(f.connect, "h").request("POST", "/", body=b"x")
    assert (r.status, r.body) == (201, b"ok")


def test_a_folded_header_line_continues_the_header():
    # obs-fold: RFC 9112 5.2 has a user agent replace it with a space, not refuse the response
    f = Factory(b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\tthree\r\nContent-Length: 2\r\n\r\nok")
    r = HTTPClient(f.connect, "h").request("GET", "/")
    assert (r.status, r.headers["x-a"], r.body) == (200, "one two three", b"ok")
    e = dualtest.raises(ProtocolError, HTTPClient(Factory(b"HTTP/1.1 200 OK\r\n x\r\n\r\n").connect, "h").request,
                        "GET", "/")
    assert "malformed header line" in str(e)
