# HMAC-SHA256 against RFC 4231, base64url, and the HS256 assertions of shared/vectors (both runtimes).
import binascii
import json

import dualtest
from mindconnect import jwt


def h(s):
    return binascii.unhexlify(s)


def rfc4231_cases():
    """RFC 4231 test cases 1-4, 6 and 7 (case 5 is a truncated MAC): key, data, HMAC-SHA256."""
    big_key = b"\xaa" * 131
    return [
        (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (b"Jefe", b"what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (h("0102030405060708090a0b0c0d0e0f10111213141516171819"), b"\xcd" * 50,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (big_key, b"Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (big_key, b"This is a test using a larger than block-size key and a larger than block-size data."
         b" The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]


def test_hmac_rfc4231():
    for key, data, want in rfc4231_cases():
        got = binascii.hexlify(jwt.hmac_sha256(key, data)).decode()
        assert got == want, (key[:4], got, want)


def test_b64url_roundtrip():
    for n in range(0, 40):
        data = bytes(range(256 - n, 256)) + dualtest.urandom(n)
        enc = jwt.b64url_encode(data)
        assert b"=" not in enc and b"+" not in enc and b"/" not in enc and b"\n" not in enc
        assert jwt.b64url_decode(enc) == data
        assert jwt.b64url_decode(enc + b"=" * (-len(enc) % 4)) == data


def _vectors():
    path = dualtest.env("VECTORS_DIR") + "/jwt_hs256.json"
    with open(path) as f:
        return json.load(f)["cases"]


HOST_FIXTURES = ("vectors_dir",)


def test_hs256_vectors_exact():
    for case in _vectors():
        got = jwt.client_assertion(case["client_id"], case["tenant"], case["client_secret"], case["now"],
                                   jti=case["jti"])
        assert got == case["jwt"], case["client_id"]


def test_assertion_claims_and_fresh_jti():
    a = jwt.client_assertion("cid", "ten", "secret", 1764050571)
    b = jwt.client_assertion("cid", "ten", "secret", 1764050571)
    assert a != b  # a new jti every time
    head, body, sig = a.split(".")
    claims = json.loads(jwt.b64url_decode(body))
    assert claims["iss"] == claims["sub"] == "cid"
    assert claims["aud"] == ["southgate"] and claims["ten"] == "ten"
    assert claims["iat"] == claims["nbf"] == 1764050571 and claims["exp"] == 1764050571 + 3600
    jti = claims["jti"]
    assert len(jti) == 36 and jti[14] == "4" and jti[19] in "89ab"
    want = jwt.b64url_encode(jwt.hmac_sha256(b"secret", (head + "." + body).encode())).decode()
    assert sig == want
