# http.py against the scripted HTTPS server of fixtures_http.py when the response is malformed,
# cut short or never comes: each case gives its documented error, never a hang (both runtimes).
import dualtest
from mindconnect.errors import NetworkError, ProtocolError
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("http_servers",)


def _client(timeout_ms=5000):
    transport = Transport(dualtest.read_bytes(dualtest.env("HTTPS_CA_DER")))
    return HTTPClient(transport.connect, dualtest.env("HTTPS_HOST"), int(dualtest.env("HTTPS_PORT")),
                      timeout_ms=timeout_ms)


def test_malformed_responses_are_protocol_errors():
    c = _client()
    for path, words in (("/garbage", "status line"), ("/long-header", "longer than 1024"),
                        ("/many-headers", "more than 32"), ("/bad-chunk", "chunk size")):
        e = dualtest.raises(ProtocolError, c.request, "GET", path)
        assert words in str(e) and "localhost:" in str(e), str(e)
        assert c.request("GET", "/").body == b"hello"  # the client recovers on a new connection


def _admin(path):
    """GET path on the plain HTTP side of the test server (counters, signals); the Response."""
    admin = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(dualtest.env("HTTP_PORT")))
    try:
        return admin.request("GET", path)
    finally:
        admin.close()


def test_truncated_and_reset_bodies_are_network_errors():
    c = _client()
    e = dualtest.raises(NetworkError, c.request, "GET", "/truncated")
    assert "after 10 of 100 body bytes" in str(e)
    go = _admin("/_stats").json().get("reset_go", 0) + 1
    got = []

    def sink(piece):  # the server resets the connection once the body has started arriving here
        if not got:
            _admin("/_poke?name=reset_go")
        got.append(len(piece))
    e = dualtest.raises(NetworkError, c.request, "GET", "/reset?go=%d" % go, sink=sink)
    assert 0 < sum(got) < 1000000
    assert "localhost:" in str(e) and ("reset" in str(e) or "of 1000000 body bytes" in str(e)), str(e)
    assert c.request("GET", "/").body == b"hello"


def test_a_server_that_stops_answering_times_out():
    c = _client(timeout_ms=500)
    e = dualtest.raises(NetworkError, c.request, "GET", "/slow")
    assert "timed out" in str(e) and "500 ms" in str(e), str(e)
    assert c.connections == 1 and c.request("GET", "/").body == b"hello"
