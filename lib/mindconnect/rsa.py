"""RSASSA-PKCS1-v1_5 signatures with SHA-256 (RS256) from a private key on flash, in pure Python,
and the agent's RSA key files (which key an identity or a rotation uses; promotion of the next key).

Only agents of the RSA_3072 profile import this module (mindconnect.onboard and renew, on demand), so
a SHARED_SECRET node never has it in its heap. The key is made on the host by tools/provision.py
(tools/rsakey.py writes this format) because generating 3072-bit primes on an ESP32 would take
minutes; the board never parses PEM or ASN.1. A signature uses the CRT (two 1536-bit modular
exponentiations with MicroPython's big integers and three-argument pow) and is checked with the public
exponent before it is returned: a corrupt key or a computing fault raises, never sends a bad token.

Key file, all integers big-endian:
    b"MCRSA1"                          format and version
    1 byte length, kid (ASCII)         the key id the agent registers in its JWKS
    n, e, p, q, dp, dq, qinv           each: 2-byte length, then the integer's bytes
    32 bytes                           SHA-256 of everything before it
Errors name the file and what to do, never a byte of the key.
"""

import hashlib
import os

from mindconnect import jsonw
from mindconnect.compat import fsync_dir
from mindconnect.errors import ConfigError
from mindconnect.jwt import b64url_encode

MAGIC = b"MCRSA1"
# The key files in the agent's store folder. Named here, not in credentials.py: every name a module
# holds costs heap for good on MicroPython, and SHARED_SECRET nodes never load this module.
RSA_KEY = "rsa_key"
RSA_NEXT = "rsa_next"
RSA_PENDING = "rsa_pending"
_FIELDS = 7  # n, e, p, q, dp, dq, qinv
# DER of the DigestInfo header for SHA-256 (RFC 8017, 9.2, note 1); the 32-byte hash follows it
_SHA256_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"
_REPROVISION = "provision the board's RSA key again with tools/provision.py"


class PrivateKey:
    """An RSA private key in CRT form. repr and str show the kid and size only."""

    def __init__(self, kid, n, e, p, q, dp, dq, qinv, size):
        self.kid = kid
        self.size = size  # modulus length in bytes (384 for RSA-3072)
        self._n = n
        self._e = e
        self._p = p
        self._q = q
        self._dp = dp
        self._dq = dq
        self._qinv = qinv

    def __repr__(self):
        return "<rsa.PrivateKey %s %d bits>" % (self.kid, self.size * 8)

    __str__ = __repr__

    def sign_sha256(self, msg):
        """The PKCS#1 v1.5 SHA-256 signature of msg (bytes), self.size bytes long.

        Raises ConfigError when the result does not verify with the public exponent.
        """
        k = self.size
        pad = k - len(_SHA256_INFO) - 32 - 3
        if pad < 8:
            raise ConfigError("the RSA key is too short for SHA-256 signatures: " + _REPROVISION)
        em = b"\x00\x01" + b"\xff" * pad + b"\x00" + _SHA256_INFO + hashlib.sha256(msg).digest()
        m = int.from_bytes(em, "big")
        em = None
        p, q = self._p, self._q
        s1 = pow(m % p, self._dp, p)
        s2 = pow(m % q, self._dq, q)
        s = s2 + (self._qinv * (s1 - s2)) % p * q
        s1 = s2 = None
        if pow(s, self._e, self._n) != m:
            raise ConfigError("the RSA signature failed its own check (corrupt key on flash or a computing fault); "
                              "nothing was sent: " + _REPROVISION)
        return s.to_bytes(k, "big")

    def public_jwk(self):
        """The public key as a JWK for register and rotate: e, n, kty, kid (PROTOCOL.md Part B 1)."""
        return jsonw.Obj(("e", b64url_encode(_int_bytes(self._e)).decode()),
                         ("n", b64url_encode(self._n.to_bytes(self.size, "big")).decode()),
                         ("kty", "RSA"), ("kid", self.kid))


def jwks_body(key, client_id=None):
    """The JSON body (bytes) of register (client_id None) or rotate: {"client_id"?, "jwks": {"keys": [JWK]}}."""
    jwks = ("jwks", jsonw.Obj(("keys", [key.public_jwk()])))
    return jsonw.dumpb(jsonw.Obj(("client_id", client_id), jwks) if client_id else jsonw.Obj(jwks))


def _int_bytes(v):
    """The shortest big-endian bytes of a small positive int (the public exponent)."""
    out = b""
    while v:
        out = bytes((v & 0xFF,)) + out
        v >>= 8
    return out


def kid_of(path):
    """The kid stored in the key file at path, or None when there is no such file (not verified)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 1)
            if len(head) != len(MAGIC) + 1 or head[:len(MAGIC)] != MAGIC:
                return None
            return f.read(head[-1]).decode()
    except (OSError, UnicodeError):
        return None


def load(path):
    """The PrivateKey in the key file at path; ConfigError when it is missing or damaged."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raise ConfigError("no RSA key at %s: the agent's profile is RSA_3072, %s" % (path, _REPROVISION)) from None
    body = memoryview(raw)[:-32]
    if len(raw) < len(MAGIC) + 33 or raw[:len(MAGIC)] != MAGIC or hashlib.sha256(body).digest() != raw[-32:]:
        raise ConfigError("the RSA key at %s is damaged (checksum or format): %s" % (path, _REPROVISION))
    pos = len(MAGIC) + 1 + raw[len(MAGIC)]
    kid = bytes(body[len(MAGIC) + 1:pos]).decode()
    vals = []
    while len(vals) < _FIELDS and pos + 2 <= len(body):
        size = (body[pos] << 8) | body[pos + 1]
        pos += 2
        vals.append(int.from_bytes(body[pos:pos + size], "big"))
        if len(vals) == 1:
            n_size = size
        pos += size
    if len(vals) != _FIELDS or pos != len(body):
        raise ConfigError("the RSA key at %s has the wrong layout: %s" % (path, _REPROVISION))
    return PrivateKey(kid, *vals, size=n_size)


# -- the agent's key files (credentials.py describes them) ------------------------------------------

def key_for(store, kid):
    """The private key named kid in the store folder: the onboarding key file or the next one."""
    for name in (RSA_KEY, RSA_NEXT):
        path = store.folder + "/" + name
        if kid_of(path) == kid:
            return load(path)
    raise ConfigError("the RSA key %s of the agent's identity is not on flash: provision the board again "
                      "with a new onboarding key (tools/provision.py)" % kid)


def rotation_key(store, kid, warn):
    """The key a rotation of the identity with key kid registers: the pending one, else the next one
    (persisted as pending first), else the same key again. A damaged next key is reported with warn()
    and the same key is registered again: the node keeps working until it is provisioned again."""
    pending = store.read(RSA_PENDING)
    new = pending.get("kid") if pending else None
    if not new:
        new = kid_of(store.folder + "/" + RSA_NEXT)
        if new and new != kid:
            store.write(RSA_PENDING, {"kid": new})
        else:
            new = kid
    try:
        return key_for(store, new)
    except ConfigError as e:
        if new == kid:
            raise
        warn("the next RSA key is unusable (%s); the current key is registered again" % e)
        store.remove(RSA_PENDING)
        return key_for(store, kid)


def pending(store):
    """True when a rotation to another key was begun (its kid persisted before the PUT) and not finished."""
    return bool(store.read(RSA_PENDING))


def forget_pending(store):
    """The rotation's new identity is saved: nothing is pending any more."""
    store.remove(RSA_PENDING)


def promote(store, kid):
    """A token came with key kid and no fallback identity is kept: when kid is the next key, its file
    replaces the onboarding key file (one atomic rename); the old key is no longer needed."""
    nxt = store.folder + "/" + RSA_NEXT
    if not store.has_previous() and kid_of(nxt) == kid:
        os.rename(nxt, store.folder + "/" + RSA_KEY)
        fsync_dir(store.folder)
