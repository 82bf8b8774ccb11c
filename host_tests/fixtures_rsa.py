"""pytest fixtures (host side) for the RSA_3072 profile; imported by host_tests/conftest.py.

`rsa_keys` (session): two 3072-bit keys made once with the cryptography package (tools/rsakey.py),
written as board key files, plus what the device must reproduce exactly (RS256 is deterministic):
signatures of a few messages and a whole client assertion, both made by cryptography.
`rsa_env`: the same exported for dual-runtime tests: RSA_KEY_A, RSA_KEY_B (key file paths),
RSA_VECTORS (a JSON file with kid_a, kid_b, n_a, sigs [[message hex, signature hex]], assertion).
"""

import base64
import json
import os

import pytest

__all__ = ["rsa_keys", "rsa_env"]

MESSAGES = (b"", b"abc", bytes(range(256)) * 4)
ASSERTION = {"client_id": "c0ffee00c0ffee00c0ffee00c0ffee00", "tenant": "plant", "now": 1764050571,
             "jti": "1b4e28ba-2fa1-41d2-883f-0016d3cca427"}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expected_assertion(key, client_id, tenant, now, jti):
    """The RS256 client assertion of PROTOCOL.md Part A, made by cryptography from the same key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    claims = {"iss": client_id, "sub": client_id, "aud": ["southgate"], "iat": now, "nbf": now, "exp": now + 3600,
              "schemas": ["urn:siemens:mindsphere:v1"], "ten": tenant, "jti": jti}
    signing_input = (_b64url(b'{"alg":"RS256","typ":"JWT"}') + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(sig)


class RSAKeys:
    def __init__(self, folder):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        from tools import rsakey
        self.a, self.b = rsakey.generate(), rsakey.generate()
        self.kid_a, self.kid_b = rsakey.kid(self.a), rsakey.kid(self.b)
        self.path_a, self.path_b = folder / "a.key", folder / "b.key"
        self.path_a.write_bytes(rsakey.device_form(self.a))
        self.path_b.write_bytes(rsakey.device_form(self.b))
        n = self.a.public_key().public_numbers().n
        sigs = [[m.hex(), self.a.sign(m, padding.PKCS1v15(), hashes.SHA256()).hex()] for m in MESSAGES]
        vectors = {"kid_a": self.kid_a, "kid_b": self.kid_b, "n_a": _b64url(n.to_bytes(384, "big")), "sigs": sigs,
                   "assertion": dict(ASSERTION, jwt=expected_assertion(self.a, **ASSERTION))}
        self.vectors = folder / "vectors.json"
        self.vectors.write_text(json.dumps(vectors))

    def install(self, store, next_key=False):
        """Put key a (and with next_key, key b as the next one) into an agent's store folder."""
        os.makedirs(store, exist_ok=True)
        (store / "rsa_key").write_bytes(self.path_a.read_bytes())
        if next_key:
            (store / "rsa_next").write_bytes(self.path_b.read_bytes())


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory):
    return RSAKeys(tmp_path_factory.mktemp("rsa-keys"))


@pytest.fixture
def rsa_env(rsa_keys, monkeypatch):
    monkeypatch.setenv("RSA_KEY_A", str(rsa_keys.path_a))
    monkeypatch.setenv("RSA_KEY_B", str(rsa_keys.path_b))
    monkeypatch.setenv("RSA_VECTORS", str(rsa_keys.vectors))
    return rsa_keys
