"""The agent's identity and tokens on flash: small JSON documents, checksummed, written atomically.

Every document is one file: the JSON text, a newline, and the SHA-256 (hex) of that text. It is
written to `<name>.tmp`, flushed and synced, then renamed over `<name>` (atomic on littlefs and
POSIX), so a power cut leaves either the old or the new document, never half of one. A file that
fails its checksum or does not parse is treated as missing.

Documents kept in the store folder:
    current    the ClientIdentifier in use
    mirror     a second copy of current, read only when current is unreadable: one damaged file (worn
               flash) must not cost the identity, which only a new onboarding key could give back
    previous   the one before a rotation, kept until a token was obtained with `current`
    token      the access token and its expiry, so a wake cycle needs no token request
    model      hashes of the data model and mappings last accepted by the hub, and the DSC eTag
    needs_key  present when every stored secret was refused: a new onboarding key is needed
    rsa_pending  RSA_3072: the kid of the key being registered by a rotation (written before the PUT)

RSA_3072 agents also keep their private keys here, in the binary form of mindconnect.rsa, written by
tools/provision.py: `rsa_key` (the key registered at onboarding) and optionally `rsa_next` (a key
made in advance for the next rotation). An identity names its key by kid; after a rotation to the
next key has been confirmed with a token, `rsa_next` is renamed over `rsa_key`.
"""

import binascii
import hashlib
import json
import os

from mindconnect.compat import fsync_dir, fsync_file

CURRENT = "current"
MIRROR = "mirror"
PREVIOUS = "previous"
TOKEN = "token"
MODEL = "model"
NEEDS_KEY = "needs_key"


def key_fingerprint(iat):
    """A short, non-reversible fingerprint of an onboarding key's IAT (to recognise a spent key)."""
    if isinstance(iat, str):
        iat = iat.encode()
    return binascii.hexlify(hashlib.sha256(iat).digest()[:12]).decode()


class Identity:
    """A ClientIdentifier from register or rotate, plus where it belongs (tenant, base URL).

    kid is None for SHARED_SECRET; for RSA_3072 it names the private key registered with this identity
    (client_secret is then None). The secret and the registration access token are attributes, never
    part of repr or str.
    """

    FIELDS = ("client_id", "client_secret", "client_secret_expires_at", "registration_access_token",
              "registration_client_uri", "tenant", "base_url", "key_fp", "kid")

    def __init__(self, client_id, client_secret, client_secret_expires_at, registration_access_token,
                 registration_client_uri, tenant, base_url, key_fp="", kid=None):
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_secret_expires_at = int(client_secret_expires_at or 0)
        self.registration_access_token = registration_access_token
        self.registration_client_uri = registration_client_uri
        self.tenant = tenant
        self.base_url = base_url
        self.key_fp = key_fp
        self.kid = kid

    @classmethod
    def from_response(cls, doc, tenant, base_url, key_fp, kid=None):
        """Build from a register/rotate answer (kid: the RSA key just registered, None for SHARED_SECRET);
        ValueError names the missing field (never a value)."""
        needed = ("client_id", "registration_access_token", "registration_client_uri")
        for name in needed if kid else needed + ("client_secret",):
            if not isinstance(doc.get(name), str) or not doc.get(name):
                raise ValueError("the hub's ClientIdentifier has no " + name)
        return cls(doc["client_id"], None if kid else doc["client_secret"], doc.get("client_secret_expires_at") or 0,
                   doc["registration_access_token"], doc["registration_client_uri"], tenant, base_url, key_fp, kid)

    @classmethod
    def from_doc(cls, doc):
        return cls(*[doc.get(f) for f in cls.FIELDS])

    def to_doc(self):
        return {f: getattr(self, f) for f in self.FIELDS}

    def same_credential(self, other):
        """Same secret or key and the same registration access token (an RSA key may be re-registered)."""
        return (other is not None and self.client_secret == other.client_secret and self.kid == other.kid
                and self.registration_access_token == other.registration_access_token)

    def __repr__(self):
        return "<Identity %s%s expires_at=%d>" % (self.client_id, " kid=" + self.kid if self.kid else "",
                                                  self.client_secret_expires_at)

    __str__ = __repr__


class CredentialStore:
    """Checksummed JSON documents in one folder (see the module docstring for the names)."""

    def __init__(self, folder):
        self.folder = folder.rstrip("/") or "/"
        try:
            os.mkdir(self.folder)
        except OSError:
            pass  # already there

    def _path(self, name):
        return self.folder + "/" + name

    def read(self, name):
        """The document `name` as a dict, or None when it is missing or corrupt."""
        path = self._path(name)
        try:
            raw = bytearray(os.stat(path)[6])  # read into, and parsed in place: no copy of the text
            with open(path, "rb") as f:
                if f.readinto(raw) != len(raw):
                    return None
        except OSError:
            return None
        cut = raw.rfind(b"\n")
        if cut < 0 or binascii.hexlify(hashlib.sha256(memoryview(raw)[:cut]).digest()) != raw[cut + 1:].strip():
            return None
        raw[cut:] = b" " * (len(raw) - cut)  # the checksum line as whitespace after the JSON text
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def write(self, name, doc, parts=None):
        """Replace document `name` atomically: temp file, flush + sync, rename. parts: the document's
        JSON text in pieces (bytes-like), written as they are instead of doc."""
        parts = parts or (json.dumps(doc).encode(),)
        path = self._path(name)
        tmp = path + ".tmp"
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for p in parts:
                    f.write(p)
                    h.update(p)
                f.write(b"\n")
                f.write(binascii.hexlify(h.digest()))
                fsync_file(f)
        except OSError:
            try:  # a full flash: what the temp file took goes back to the spools
                os.remove(tmp)
            except OSError:
                pass
            raise
        os.rename(tmp, path)
        fsync_dir(self.folder)

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass  # already gone
        fsync_dir(self.folder)

    # -- identities ------------------------------------------------------------------------------

    def identities(self):
        """[current, previous] as far as they are readable; an unreadable current is taken from its
        mirror, and without either the previous one comes first."""
        out = []
        for name in (CURRENT, MIRROR, PREVIOUS):
            if name is MIRROR and out:
                continue
            doc = self.read(name)
            if doc and doc.get("client_id") and (doc.get("client_secret") or doc.get("kid")):
                ident = Identity.from_doc(doc)
                if not out or not ident.same_credential(out[0]):
                    out.append(ident)
        return out

    def current(self):
        ids = self.identities()
        return ids[0] if ids else None

    def save_current(self, ident):
        text = (json.dumps(ident.to_doc()).encode(),)  # encoded once for both files
        self.write(CURRENT, None, text)
        self.write(MIRROR, None, text)

    def save_previous(self, ident):
        self.write(PREVIOUS, ident.to_doc())

    def drop_previous(self):
        self.remove(PREVIOUS)

    def has_previous(self):
        return self.read(PREVIOUS) is not None

    # -- token -----------------------------------------------------------------------------------

    def token(self, client_id):
        """(access_token, expires_at seconds) stored for client_id, or None."""
        doc = self.read(TOKEN)
        if doc and doc.get("client_id") == client_id and doc.get("access_token"):
            return doc["access_token"], int(doc.get("expires_at") or 0)
        return None

    def save_token(self, client_id, bearer, expires_at):
        """bearer: b"Bearer <access token>" (bytes or a memoryview) of a token that JSON writes as it is
        (a JWT: no quote, backslash or control character): its 1 KB goes into the file from bearer, no
        str or bytes copy of it is made."""
        self.write(TOKEN, None, (json.dumps({"client_id": client_id, "expires_at": int(expires_at)})[:-1].encode()
                                 + b', "access_token": "', memoryview(bearer)[7:], b'"}'))

    def drop_token(self):
        self.remove(TOKEN)

    # -- the "needs a new onboarding key" state ----------------------------------------------------

    def needs_key(self):
        """The reason recorded when every stored secret was refused, or None."""
        doc = self.read(NEEDS_KEY)
        return doc.get("reason", "credentials refused") if doc else None

    def clear_needs_key(self):
        self.remove(NEEDS_KEY)
