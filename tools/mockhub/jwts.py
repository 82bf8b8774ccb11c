"""JWTs on the hub side: RS256 tokens the hub issues, and verification of client assertions.

Verification works on the exact received bytes: MCL pads its base64url segments and signs the
padded text, so nothing is re-encoded before checking a signature.
"""

import base64
import binascii
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_ID = "mockhub-key-1"
_RSA_HASHES = {"RS256": hashes.SHA256, "RS384": hashes.SHA384}


class JWTError(ValueError):
    """A token or assertion that cannot be accepted; the message says why (never its content)."""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    if isinstance(text, str):
        text = text.encode()
    text = text.rstrip(b"=")
    if not text.replace(b"-", b"").replace(b"_", b"").isalnum() and text:
        raise JWTError("segment is not base64url")
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JWTError("segment is not base64url") from None


def sign_rs256(key, claims):
    header = {"kid": KEY_ID, "alg": "RS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)


class Parsed:
    """A compact JWT split into its parts; nothing verified yet."""

    def __init__(self, token):
        parts = token.split(".")
        if len(parts) != 3:
            raise JWTError("a JWT has three dot-separated segments, this one has %d" % len(parts))
        try:
            self.header = json.loads(b64url_decode(parts[0]))
            self.claims = json.loads(b64url_decode(parts[1]))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise JWTError("JWT header or claims are not JSON") from None
        if not isinstance(self.header, dict) or not isinstance(self.claims, dict):
            raise JWTError("JWT header and claims must be JSON objects")
        self.signing_input = (parts[0] + "." + parts[1]).encode()
        self.signature = b64url_decode(parts[2])
        self.alg = self.header.get("alg")

    def verify_hs256(self, secret):
        """True when signed with HS256 under the UTF-8 bytes of secret."""
        want = hmac.new(secret.encode(), self.signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(want, self.signature)

    def verify_rsa(self, public_key):
        """True when signed with this token's RS256/RS384 alg by public_key."""
        try:
            public_key.verify(self.signature, self.signing_input, padding.PKCS1v15(), _RSA_HASHES[self.alg]())
            return True
        except (InvalidSignature, KeyError, ValueError):
            return False


def jwk_public_key(jwk):
    """An RSA public key from a JWK dict {"kty":"RSA","n","e"}; JWTError when it is not one."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("n"), str) \
            or not isinstance(jwk.get("e"), str):
        raise JWTError("jwks.keys[0] must be an RSA JWK with kty, n and e")
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    if n.bit_length() < 2048:
        raise JWTError("the RSA key in jwks is shorter than 2048 bits")
    return rsa.RSAPublicNumbers(e, n).public_key()


def public_jwk(key):
    nums = key.public_key().public_numbers()
    return {"kty": "RSA", "n": b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
            "e": b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))}


def token_key_document(key):
    """The /oauth/token_key answer: the public key as a one-line PEM plus its JWK fields."""
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    doc = {"kty": "RSA", "alg": "SHA256withRSA", "use": "sig", "kid": KEY_ID,
           "value": "-----BEGIN PUBLIC KEY-----" + body + "-----END PUBLIC KEY-----"}
    doc.update({k: v for k, v in public_jwk(key).items() if k in ("n", "e")})
    return doc


def fingerprint(secret):
    """A short, non-reversible label for a secret, for dashboards and logs."""
    if not secret:
        return "-"
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]
