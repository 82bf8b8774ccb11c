"""RSA keys for RSA_3072 agents, made on the host: generation and the board's key file format.

The board cannot generate 3072-bit primes in reasonable time and has no PEM/ASN.1 parser, so the host
generates the key with the cryptography package and writes the compact form that
lib/mindconnect/rsa.py reads (its docstring describes the layout). The private key exists only in the
bytes returned here, which go straight to the board's flash; nothing is printed or kept.
"""

import hashlib

from cryptography.hazmat.primitives.asymmetric import rsa

BITS = 3072
PUBLIC_EXPONENT = 65537
MAGIC = b"MCRSA1"


def generate(bits=BITS):
    """A new RSA private key (cryptography object) with e = 65537."""
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)


def _int_bytes(v):
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


def kid(key):
    """The key id registered in the JWKS: "mc-" and 16 hex digits of the modulus' SHA-256 (not secret)."""
    return "mc-" + hashlib.sha256(_int_bytes(key.public_key().public_numbers().n)).hexdigest()[:16]


def device_form(key):
    """The key file for the board's flash (bytes); it holds the private key, so never log it."""
    priv = key.private_numbers()
    pub = priv.public_numbers
    return pack(kid(key), pub.n, pub.e, priv.p, priv.q, priv.dmp1, priv.dmq1, priv.iqmp)


def pack(key_id, n, e, p, q, dp, dq, qinv):
    """The key file from the key's numbers (CRT form) and its kid."""
    name = key_id.encode()
    out = bytearray(MAGIC)
    out.append(len(name))
    out += name
    for v in (n, e, p, q, dp, dq, qinv):
        raw = _int_bytes(v)
        out += len(raw).to_bytes(2, "big") + raw
    out += hashlib.sha256(out).digest()
    return bytes(out)
