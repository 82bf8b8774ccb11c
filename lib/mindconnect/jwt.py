"""base64url, HMAC-SHA256 (RFC 2104 over hashlib) and the client assertions of PROTOCOL.md: HS256
(SHARED_SECRET) and RS256 (RSA_3072, with a key from mindconnect.rsa).

MicroPython hash objects cannot be copied and micropython-lib's hmac cannot be installed offline, so
HMAC is computed here; it is checked against RFC 4231 and CPython's hmac in the tests.
"""

import binascii
import hashlib

from mindconnect import jsonw
from mindconnect.compat import const, urandom

_BLOCK = const(64)
_HEADER_HS256 = b'{"alg":"HS256","typ":"JWT"}'
_HEADER_RS256 = b'{"alg":"RS256","typ":"JWT"}'


def b64url_encode(data):
    """base64url without padding, as bytes."""
    s = binascii.b2a_base64(data).rstrip(b"\n=")
    return s.replace(b"+", b"-").replace(b"/", b"_")


def b64url_decode(s):
    """Decode base64url with or without padding (str or bytes)."""
    if isinstance(s, str):
        s = s.encode()
    s = s.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    return binascii.a2b_base64(s + b"=" * (-len(s) % 4))


def _xor_pad(key, byte):
    return bytes(b ^ byte for b in key)


def hmac_sha256(key, msg):
    """HMAC-SHA256 of msg under key (both bytes), per RFC 2104."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (_BLOCK - len(key))
    inner = hashlib.sha256(_xor_pad(key, 0x36))
    inner.update(msg)
    outer = hashlib.sha256(_xor_pad(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def uuid4(rand=None):
    """A random UUID version 4 as a string."""
    b = bytearray((rand or urandom)(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = binascii.hexlify(b).decode()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def assertion_claims(client_id, tenant, now, jti, lifetime=3600):
    """The claims of a client assertion, in the order of PROTOCOL.md Part A."""
    now = int(now)
    return jsonw.Obj(
        ("iss", client_id),
        ("sub", client_id),
        ("aud", ["southgate"]),
        ("iat", now),
        ("nbf", now),
        ("exp", now + lifetime),
        ("schemas", ["urn:siemens:mindsphere:v1"]),
        ("ten", tenant),
        ("jti", jti),
    )


def sign_hs256(claims, secret):
    """A compact JWS (str) of claims (an Obj or dict) signed HS256 with the UTF-8 bytes of secret."""
    if isinstance(secret, str):
        secret = secret.encode()
    return _jws(_HEADER_HS256, claims, secret)


def _jws(header, claims, secret):
    """header.claims.signature: HMAC-SHA256 under secret (bytes), or RSA when secret is a key object."""
    signing_input = b64url_encode(header) + b"." + b64url_encode(jsonw.dumpb(claims))
    if isinstance(secret, bytes):
        sig = hmac_sha256(secret, signing_input)
    else:
        sig = secret.sign_sha256(signing_input)
    return (signing_input + b"." + b64url_encode(sig)).decode()


def client_assertion(client_id, tenant, secret, now, jti=None):
    """The client assertion for the token endpoint (str): HS256 with a client secret (str), RS256 with
    an RSA private key (mindconnect.rsa.PrivateKey, RSA_3072 profile).

    One RSA-3072 signature takes about a tenth of a second on a desktop and seconds on an ESP32
    (BENCHMARKS.md): the agent signs once per access token, never in a loop.
    """
    claims = assertion_claims(client_id, tenant, now, jti or uuid4())
    if isinstance(secret, str):
        return sign_hs256(claims, secret)
    return _jws(_HEADER_RS256, claims, secret)
