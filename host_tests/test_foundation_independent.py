"""Foundation outputs checked by independent implementations on the host.

- An HS256 assertion signed under MicroPython (from .mpy, with the test heap cap) verifies with
  CPython's hmac module.
- Multipart bodies from lib/mindconnect/multipart.py parse back with the standard library's MIME parser
  (two levels: multipart/mixed of multipart/related), for every source kind.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import json

from mindconnect import multipart


def _b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_assertion_signed_on_micropython_verifies_with_cpython_hmac(mpy):
    secret = "pässwörd-from-µPy"
    proc = mpy.run_code(
        "from mindconnect import jwt\n"
        "print(jwt.client_assertion('node-7', 'tenant-a', %r, 1764050571))\n" % secret)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    token = proc.stdout.strip()
    head, body, sig = token.split(".")
    want = hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64url(sig), want)
    assert json.loads(_b64url(head)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(_b64url(body))
    assert claims["iss"] == claims["sub"] == "node-7" and claims["ten"] == "tenant-a"
    assert claims["exp"] - claims["iat"] == 3600
    # a wrong secret does not verify
    bad = hmac.new(b"other", (head + "." + body).encode(), hashlib.sha256).digest()
    assert not hmac.compare_digest(_b64url(sig), bad)


def test_multipart_parses_back_with_the_stdlib_parser(tmp_path):
    blob = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    items = [
        multipart.Item("standardTimeSeries", "1.0", "application/json", multipart.BytesSource(b'[{"a":1}]'),
                       details={"configurationId": "cfg"}),
        multipart.Item("file", "1.0", "application/octet-stream", multipart.FileSource(str(path))),
        multipart.Item("custom", "1.0", "text/plain", multipart.ChunkSource(6, lambda: iter([b"abc", b"def"]))),
    ]
    body = multipart.MultipartBody(items)
    out = bytearray()
    body.write_to(out.extend)
    assert len(out) == body.length
    msg = email.message_from_bytes(b"Content-Type: " + body.content_type.encode() + b"\r\n\r\n" + bytes(out),
                                   policy=email.policy.HTTP)
    assert msg.get_content_type() == "multipart/mixed" and not msg.defects
    parts = list(msg.iter_parts())
    assert len(parts) == 3
    payloads = []
    for part, item in zip(parts, items):
        assert part.get_content_type() == "multipart/related"
        meta, payload = list(part.iter_parts())
        assert meta.get_content_type() == "application/vnd.siemens.mindsphere.meta+json"
        assert json.loads(meta.get_payload(decode=True)) == json.loads(item.meta)
        payloads.append(payload.get_payload(decode=True))
    assert payloads == [b'[{"a":1}]', blob, b"abcdef"]
