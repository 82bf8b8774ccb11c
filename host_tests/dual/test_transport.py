# transport.py against the servers of fixtures_http.py: a certificate from another CA or for another
# name is refused before a single request byte reaches the server; connect failures and timeouts;
# requests through an HTTP CONNECT proxy, with and without basic auth (both runtimes).
import dualtest
from mindconnect.errors import ConfigError, NetworkError, TLSError
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("http_servers",)


def _stats(**wait):
    """The servers' counters, once each counter named in wait has reached its value (or after 5 s)."""
    admin = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(dualtest.env("HTTP_PORT")))
    query = "&".join(["%s=%d" % (k, v) for k, v in wait.items()])
    try:
        return admin.request("GET", "/_stats?" + query).json()
    finally:
        admin.close()


def _ca(name="HTTPS_CA_DER"):
    return dualtest.read_bytes(dualtest.env(name))


def _refused_without_app_data(transport, port, label):
    before = _stats()
    client = HTTPClient(transport.connect, "localhost", port, timeout_ms=5000)
    e = dualtest.raises(TLSError, client.request, "POST", "/echo", body=b"secret reading")
    failed = label + "_tls_failed"
    after = _stats(**{failed: before.get(failed, 0) + 1})
    assert after.get(failed, 0) == before.get(failed, 0) + 1  # the server saw the handshake fail...
    app = label + "_app_bytes"
    assert after.get(app, 0) == before.get(app, 0)  # ...and not one byte of the request
    assert (transport.connects, transport.handshakes, client.connections) == (1, 0, 0)
    return str(e)


def test_certificate_from_another_ca_is_refused():
    msg = _refused_without_app_data(Transport(_ca("HTTPS_WRONG_CA_DER")), int(dualtest.env("HTTPS_PORT")), "https")
    assert "localhost:" in msg and "CA" in msg, msg


def test_certificate_for_another_host_name_is_refused():
    msg = _refused_without_app_data(Transport(_ca()), int(dualtest.env("WRONG_NAME_PORT")), "wrong_name")
    assert "localhost:" in msg and "host name" in msg, msg


def test_ip_address_host_is_verified_too():
    t = Transport(_ca())
    client = HTTPClient(t.connect, "127.0.0.1", int(dualtest.env("HTTPS_PORT")), timeout_ms=5000)
    assert client.request("GET", "/").body == b"hello" and t.handshakes == 1
    client.close()


def test_connect_refused_and_connect_timeout():
    t = Transport(_ca())
    e = dualtest.raises(NetworkError, t.connect, "127.0.0.1", int(dualtest.env("CLOSED_PORT")), 2000)
    assert "refused" in str(e) and not isinstance(e, TLSError)
    e = dualtest.raises(NetworkError, t.connect, "127.0.0.1", int(dualtest.env("BACKLOG_PORT")), 300)
    assert "no connection" in str(e) and "300 ms" in str(e), str(e)
    assert t.connects == 0


def test_a_ca_file_may_hold_several_certificates():
    # e.g. the gateway's root and the root announced to replace it: a certificate chaining to any one
    # is accepted (MicroPython loads one DER certificate per call: before, only the first counted)
    port = int(dualtest.env("HTTPS_PORT"))
    for ca in (_ca("HTTPS_WRONG_CA_DER") + _ca(), _ca() + _ca("HTTPS_WRONG_CA_DER")):
        client = HTTPClient(Transport(ca).connect, "localhost", port, timeout_ms=5000)
        assert client.request("POST", "/echo", body=b"reading").status == 200
        client.close()
    # a PEM file (or anything not DER) is named as such when the first connection needs the CA
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    t = Transport(pem)
    e = dualtest.raises(TLSError, HTTPClient(t.connect, "localhost", port).request, "GET", "/")
    assert "not DER certificates" in str(e) and "openssl x509 -outform der" in str(e), str(e)
    assert t.handshakes == 0


def test_configuration_mistakes_are_config_errors():
    dualtest.raises(ConfigError, Transport)  # TLS without a CA: never an unverified connection
    dualtest.raises(ConfigError, Transport, _ca(), ("127.0.0.1", 3128, "user"))


def _via_proxy(proxy):
    t = Transport(_ca(), proxy=proxy)
    return t, HTTPClient(t.connect, "localhost", int(dualtest.env("HTTPS_PORT")), timeout_ms=5000)


def test_requests_through_a_connect_proxy():
    before = _stats().get("proxy_tunnels", 0)
    t, client = _via_proxy(("127.0.0.1", int(dualtest.env("PROXY_PORT"))))
    r1 = client.request("GET", "/")
    r2 = client.request("POST", "/echo", body=b"through the tunnel")
    assert r1.body == b"hello" and r2.json()["length"] == 18
    assert r1.headers["x-conn"] == r2.headers["x-conn"] and (t.connects, t.handshakes) == (1, 1)
    assert _stats(proxy_tunnels=before + 1)["proxy_tunnels"] == before + 1
    client.close()


def test_proxy_with_basic_auth():
    port = int(dualtest.env("PROXY_AUTH_PORT"))
    user, password = dualtest.env("PROXY_USER"), dualtest.env("PROXY_PASSWORD")
    before = _stats()
    t, client = _via_proxy(("127.0.0.1", port, user, password))
    assert client.request("GET", "/").body == b"hello"
    client.close()
    assert _stats()["proxy_auth_tunnels"] == before.get("proxy_auth_tunnels", 0) + 1
    for proxy in (("127.0.0.1", port), ("127.0.0.1", port, user, "wrong-" + password)):
        t, client = _via_proxy(proxy)
        e = dualtest.raises(NetworkError, client.request, "GET", "/")
        assert "407" in str(e) and "127.0.0.1:%d" % port in str(e) and e.status == 407, str(e)
        assert password not in str(e) and password not in repr(e)
        assert (t.handshakes, client.connections) == (0, 0)
    after = _stats(proxy_auth_refused=before.get("proxy_auth_refused", 0) + 2)
    assert after["proxy_auth_refused"] == before.get("proxy_auth_refused", 0) + 2
    assert after["proxy_auth_tunnels"] == before.get("proxy_auth_tunnels", 0) + 1


def test_a_proxy_refusal_with_a_latin1_reason_is_a_network_error():
    t = Transport(_ca(), proxy=("127.0.0.1", int(dualtest.env("PROXY_PORT"))))
    e = dualtest.raises(NetworkError, HTTPClient(t.connect, "latin1.invalid", 443, timeout_ms=5000).request,
                        "GET", "/")
    assert e.status == 403 and "latin1.invalid:443" in str(e), str(e)
