# RS256 on the device (mindconnect.rsa, jwt.sign_rs256), both runtimes: signatures and a whole client
# assertion byte-equal to what the cryptography package makes with the same key; damaged key files and
# computing faults refused with a clear error that carries no key material.
import binascii
import json

import dualtest
from mindconnect import jwt, rsa
from mindconnect.errors import ConfigError

HOST_FIXTURES = ("rsa_env",)


def _vectors():
    with open(dualtest.env("RSA_VECTORS")) as f:
        return json.load(f)


def _longest_digit_run(text, digits="0123456789abcdefABCDEF"):
    """Length of the longest run of hex digits in text: key material would show as a long run."""
    best = run = 0
    for ch in text:
        run = run + 1 if ch in digits else 0
        best = max(best, run)
    return best


def _no_key_material(text):
    assert _longest_digit_run(text) < 20, text  # a kid is "mc-" + 16 hex digits


def test_signatures_equal_those_of_cryptography():
    key = rsa.load(dualtest.env("RSA_KEY_A"))
    for msg_hex, want in _vectors()["sigs"]:
        got = key.sign_sha256(binascii.unhexlify(msg_hex))
        assert len(got) == 384
        assert binascii.hexlify(got).decode() == want, msg_hex[:16]


def test_rs256_assertion_equals_cryptography():
    case = _vectors()["assertion"]
    key = rsa.load(dualtest.env("RSA_KEY_A"))
    got = jwt.client_assertion(case["client_id"], case["tenant"], key, case["now"], jti=case["jti"])
    assert got == case["jwt"]


def test_public_jwk_and_register_body():
    v = _vectors()
    key = rsa.load(dualtest.env("RSA_KEY_A"))
    assert key.kid == v["kid_a"] and rsa.kid_of(dualtest.env("RSA_KEY_A")) == v["kid_a"]
    body = rsa.jwks_body(key, "cid1")
    want = '{"client_id":"cid1","jwks":{"keys":[{"e":"AQAB","n":"%s","kty":"RSA","kid":"%s"}]}}' % (
        v["n_a"], v["kid_a"])
    assert body == want.encode()
    assert rsa.jwks_body(key).startswith(b'{"jwks":{"keys":[{"e":"AQAB",')


def test_repr_shows_kid_and_size_only():
    key = rsa.load(dualtest.env("RSA_KEY_A"))
    text = repr(key) + str(key)
    assert key.kid in text and "3072 bits" in text
    _no_key_material(text)


def test_damaged_or_missing_key_files_are_refused_clearly():
    good = dualtest.read_bytes(dualtest.env("RSA_KEY_A"))
    path = dualtest.tmpdir() + "/rsa_key"
    flipped = bytearray(good)
    flipped[200] ^= 0x01  # a bit of p on flash
    cases = (("flipped bit", bytes(flipped), "damaged"), ("truncated", good[:700], "damaged"),
             ("empty", b"", "damaged"), ("not a key", b"-----BEGIN RSA PRIVATE KEY-----" + good[30:], "damaged"))
    for name, data, word in cases:
        dualtest.write_bytes(path, data)
        e = dualtest.raises(ConfigError, rsa.load, path)
        msg = str(e)
        assert word in msg and path in msg and "tools/provision.py" in msg, (name, msg)
        _no_key_material(msg)
    e = dualtest.raises(ConfigError, rsa.load, dualtest.tmpdir() + "/none")
    assert "no RSA key" in str(e) and "RSA_3072" in str(e)
    assert rsa.kid_of(dualtest.tmpdir() + "/none") is None


def test_a_computing_fault_never_yields_a_signature():
    key = rsa.load(dualtest.env("RSA_KEY_A"))
    good = key.sign_sha256(b"abc")
    for attr in ("_dp", "_dq", "_qinv"):  # a fault in one CRT half gives a wrong signature (and leaks q)
        saved = getattr(key, attr)
        setattr(key, attr, saved + 2)
        e = dualtest.raises(ConfigError, key.sign_sha256, b"abc")
        assert "own check" in str(e) and "nothing was sent" in str(e)
        _no_key_material(str(e))
        setattr(key, attr, saved)
    assert key.sign_sha256(b"abc") == good
