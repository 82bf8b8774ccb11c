"""New access tokens, secret rotation and recovery: loaded by Agent.authorize on demand, then dropped.

The steady wake cycle takes its token from flash; this code is needed about once an hour.

RSA_3072 identities (ident.kid set) sign RS256 with their key from flash (mindconnect.rsa, imported
here only for them). A rotation registers the next key when provisioning left one (rsa.RSA_NEXT),
else the same key again. The next key's kid is persisted as pending before the PUT; after the 200 the
new identity (naming that kid) is saved and pending removed; once a token was obtained with it, the
next key file replaces the old one. A pending kid found later means a rotation was cut short: it is
done again at the next renewal, with the same key.
"""

import json
import os

from mindconnect import credentials, jsonw
from mindconnect.agent import _W, split_url
from mindconnect.compat import fsync_file
from mindconnect.errors import (
    AuthError,
    ConfigError,
    ConnectionClosed,
    MindConnectError,
    OnboardingRequired,
    ProtocolError,
    msg,
)

_AM = "/api/agentmanagement/v3"
_FORM_HEAD = ("grant_type=client_credentials&client_assertion_type="
              "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=")


def _ensure_time(agent):
    """Never sign with an unset clock: learn the time from the gateway first."""
    if not agent.clock.is_set():
        agent._call("GET", _AM + "/oauth/token_key")
    if not agent.clock.is_set():
        raise ProtocolError("the clock is not set and the gateway sent no Date: set the time (NTP) first")


def _skip(text, i, step):
    """The first index from i (going by step) that is not JSON whitespace."""
    while 0 <= i < len(text) and text[i] in b" \t\r\n":
        i += step
    return i


def _plain(text, key):
    """Where the value of key (b'"name"') is in the JSON text of a flat object without escapes (one
    brace pair with only whitespace around it, no backslash: a quote always ends a string): (start,
    end) of a string's characters (then text[start - 1] is its quote) or of an unsigned integer's
    digits; () when key is not in it; None when the text is not such an object or the key is not
    there plainly once with such a value (parse the text with json then). A string with a control
    character is not plain. Takes a value out of a 1 KB token without a parse or a copy."""
    if (text.find(b"\\") >= 0 or text.count(b"{") != 1 or text.count(b"}") != 1
            or _skip(text, 0, 1) != text.find(b"{") or _skip(text, len(text) - 1, -1) != text.find(b"}")):
        return None
    i = text.find(key)
    if i < 0:
        return ()
    if text.find(key, i + 1) >= 0 or text.count(b'"', 0, i) % 2 or text[_skip(text, i - 1, -1)] not in b"{,":
        return None
    i = _skip(text, i + len(key), 1)
    if text[i] != 58:  # ":"
        return None
    i = _skip(text, i + 1, 1)
    if text[i] == 34:
        i += 1
        end = text.find(b'"', i)
        if end > i and min(memoryview(text)[i:end]) < 32:
            return None
        after = end + 1
    else:
        end = i
        while text[end] in b"0123456789":
            end += 1
        if end == i:
            return None
        after = end
    return (i, end) if text[_skip(text, after, 1)] in b",}" else None


def _bearer(body, now):
    """(b"Bearer <access token>", expiry) taken from the token answer's bytes without a JSON parse (see
    _plain), or None to parse it. No copy: "Bearer " is written over the 7 bytes before the token (its
    key and quote) and a memoryview of the body returned (agent._keep copies it once renew is gone)."""
    if not isinstance(body, bytearray):
        return None
    tok = _plain(body, b'"access_token"')
    life = _plain(body, b'"expires_in"')
    if not tok or tok[0] == tok[1] or body[tok[0] - 1] != 34 or life is None or (life and body[life[0] - 1] == 34):
        return None
    body[tok[0] - 7:tok[0]] = b"Bearer "
    return memoryview(body)[tok[0] - 7:tok[1]], now + ((int(body[life[0]:life[1]]) if life else 0) or 3600)


def request_token(agent, ident):
    """(b"Bearer <access token>" as bytes or a memoryview, expiry in seconds) for ident, saved; None when
    the hub refused the secret. The answer is parsed as JSON only when _bearer cannot take the token
    from its bytes."""
    _ensure_time(agent)
    now = agent.clock.now()
    from mindconnect import jwt  # here, not at the top: a rotation's first TLS connection needs the heap

    for again in (False, True):
        secret = ident.client_secret
        if ident.kid:  # the RSA key (several KB of integers) is loaded for each signature, not kept
            from mindconnect import rsa
            secret = rsa.key_for(agent.store, ident.kid)
        form = _FORM_HEAD + jwt.client_assertion(ident.client_id, ident.tenant, secret, now, jwt.uuid4(agent.rand))
        secret = None
        reused = getattr(agent._client(), "_stream", 1) is not None  # a kept-alive connection (idle close)
        try:
            r = agent._call("POST", _AM + "/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"},
                            form, False)
            break
        except ConnectionClosed:
            # closed before any answer byte: the hub may have taken this assertion (its jti is spent, the
            # same form again would be refused as a replay and cost a rotation): once more, signed anew.
            # Only on a kept-alive connection (the hub's idle close); a new one that closed is an outage:
            # a second handshake now would fail too (the agent backs off, the next try signs anew)
            if again or not reused:
                raise
    form = None  # the heap of the signed form and of the answer's body goes to parsing and saving
    if r.status in (400, 401):
        return None
    if r.status != 200:
        raise agent._failure(r, "access token")
    got = _bearer(r.body, now)  # the token (1 KB) once, as the header value it is kept as
    if got is None:
        doc = r.json()
        r = None
        token = doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("the token endpoint sent no access_token")
        got = b"Bearer " + token.encode(), now + int(doc.get("expires_in") or 3600)
        doc = None
        if json.dumps(token)[1:-1] != token:  # not as it is in JSON (never a JWT): the store escapes it
            agent.store.write(credentials.TOKEN, {"client_id": ident.client_id, "access_token": token,
                                                  "expires_at": got[1]})
            return got
        token = None
    r = None
    try:
        agent.store.save_token(ident.client_id, got[0], got[1])
    except OSError as e:
        # a full flash (the spools may take it all): the token serves from RAM, and the exchange that
        # frees the flash goes on; the next power-on asks for a token again
        agent._warn(msg(_W, 9) % e)
    return got


def _make_room(store):
    """Room on flash for what a rotation saves (previous, current and mirror: up to 2 KB or a block each),
    kept in the store as the file rotate.room between rotations: the spools may take all of the flash, and
    a secret the hub issued that the flash then refused would be lost (the one in use expires a day later).
    Made when missing; OSError when the flash has no room for it (nothing is left behind). Named as the
    spool's method: a name is interned for good, and the cycle has none to spare (docs/AGENT.md, "Memory")."""
    path = store.folder + "/rotate.room"
    try:
        bs = os.statvfs(store.folder)[0]  # files take whole blocks (littlefs) or clusters (FAT)
    except (AttributeError, OSError):
        bs = 4096
    bs = 3 * max(bs, 2048)
    try:
        if os.stat(path)[6] >= bs:
            return
    except OSError:
        pass  # not made yet
    try:
        with open(path, "wb") as f:
            f.seek(bs - 1)  # littlefs and FAT have no sparse files: the zeros are written out
            f.write(b"\0")
            fsync_file(f)
    except OSError:
        store.remove("rotate.room")
        raise


def rotate(agent, ident):
    """Rotate with ident's registration access token; the new identity (saved), None if refused, 0 when
    it waits for room on flash (then the secret in use serves on)."""
    from mindconnect.credentials import Identity

    kid, body = None, None
    try:
        # the room for the new identity before the PUT: a secret issued and then refused by a full flash
        # is lost, and the one in use expires. The next RSA key's kid is written (pending) here too
        _make_room(agent.store)
        if ident.kid:
            from mindconnect import rsa
            key = rsa.rotation_key(agent.store, ident.kid, agent._warn)
            kid, body = key.kid, rsa.jwks_body(key, ident.client_id)
            key = None
    except OSError as e:
        agent._warn("key rotation waits: the flash is full (%s); nothing was sent" % e)
        return 0
    agent._mark("rotate:before_put")
    _, _, path = split_url(ident.registration_client_uri)
    for _ in (0, 1):
        r = agent._call("PUT", path, {"Authorization": "Bearer " + ident.registration_access_token,
                                      "Content-Type": "application/json"},
                        body or jsonw.dumpb(jsonw.Obj(("client_id", ident.client_id))))
        if r.status not in (400, 401, 403, 404) or kid == ident.kid:
            break
        # The next key refused, or the registration access token: the answer does not say which (400 or
        # 401 for both). Taken for the token, the refused key was sent at every rotation until the key in
        # use expired, then NEEDS_KEY: a visit, where the hub would register the key in use again. So
        # the same key once more: taken, the node goes on with it (the next key is tried again at the
        # next rotation); refused too, it was the token.
        agent._warn("the next RSA key %s was refused (%d): the key in use is registered again" % (kid, r.status))
        r = None
        rsa.forget_pending(agent.store)
        key = rsa.key_for(agent.store, ident.kid)
        kid, body = key.kid, rsa.jwks_body(key, ident.client_id)
        key = None
    if r.status in (400, 401, 403, 404):
        agent._warn("key rotation refused (%d) for %s" % (r.status, ident.client_id))
        return None
    if not 200 <= r.status < 300:
        raise agent._failure(r, "key rotation")
    try:
        new = Identity.from_response(r.json(), ident.tenant, ident.base_url, ident.key_fp, kid)
    except ValueError as e:
        raise ProtocolError("key rotation: %s" % e) from None
    agent._mark("rotate:after_put")
    agent.store.remove("rotate.room")  # its room goes to the identity
    try:
        # the identity whose RAT was used stays as the fallback until the new secret gave a token
        agent.store.save_previous(ident)
        agent.store.save_current(new)
    except OSError as e:
        if not new.same_credential(agent.store.current()):
            # not saved: the secret in use serves on (the hub keeps it until the new one is used) and the
            # rotation is done again later with its RAT (the hub takes a RAT used for a rotation again,
            # PROTOCOL.md Part B 3); the new secret is never used unsaved
            agent._warn("key rotation not saved (%s): the secret in use serves on" % e)
            return 0
    if kid:
        rsa.forget_pending(agent.store)  # kid is set: rsa was imported above
    agent.store.drop_token()
    agent._mark("rotate:after_save")
    agent.rotations += 1
    return new


def _confirmed(agent, ident, got):
    """A token was obtained with ident, the current identity: the fallback is no longer needed.
    Returns (token, its expiry, the secret's expiry) for agent._keep: nothing is read back from flash."""
    try:
        if agent.store.has_previous():
            agent._mark("rotate:after_token")
            agent.store.drop_previous()
        if ident.kid:
            from mindconnect import rsa
            rsa.promote(agent.store, ident.kid)  # a rename, which a full littlefs may refuse: done next time
        # the room a rotation needs, kept for the next one: the first one too (onboarding leaves none), or
        # a flash the spools filled before it left the secret to expire unrotated. Made when missing
        _make_room(agent.store)
    except OSError:
        pass
    return got + (ident.client_secret_expires_at,)


def _rotated_token(agent, ident):
    """Rotate with ident, then a token with the new secret: (what agent._keep takes, or None when the
    token was refused; True when the hub took the rotation), None when it refused the rotation, 0 when
    the rotation waits for room on flash."""
    new = rotate(agent, ident)
    if not new:
        return new
    got = request_token(agent, new)
    return (_confirmed(agent, new, got) if got else None), True


def authorize(agent, ids, rotation_due):
    """Agent.authorize without a usable stored token: rotate when due (or an RSA rotation was cut short),
    else request; recover on refusal. Returns what agent._keep takes: (token, expiry, secret's expiry).

    When the secret is refused: the previous identity, then the gateway's time if the clocks differ,
    then rotation with any stored registration access token; when all fail, NEEDS_KEY (persisted)
    and OnboardingRequired. A pass in which the hub took a rotation ends in AuthError instead (the
    credentials are good: try again later).
    """
    pending = False
    if ids[0].kid:
        from mindconnect import rsa
        pending = rsa.pending(agent.store)
    took = None  # the hub took a rotation in this pass: it vouched for the stored credentials
    held = None  # the hub refused a rotation within the hour (document "rotate"): not asked again until then
    if rotation_due and not pending:
        held = agent.store.read("rotate")
        held = held and 0 <= agent.clock.now() - (held.get("at") or 0) < 3600
        got = held and agent.store.token(ids[0].client_id)
        if got and agent.clock.now() < got[1] - 300:
            return got + (0,)  # the token got since: kept until it runs out, then the rotation again
    if (rotation_due or pending) and not held:
        got = None
        try:
            took = _rotated_token(agent, ids[0])
        except Exception as e:  # noqa: BLE001 - a MindConnectError: trying later can help (retryable)
            # the hub cannot rotate now (5xx, 429, no answer): the token on flash, while it lasts, still
            # serves the uploads; the rotation is tried again in an hour (a rotation saved drops the token)
            got = getattr(e, "retryable", 0) and agent.store.token(ids[0].client_id)
            if not got or agent.clock.now() >= got[1] - 300:
                raise
        if took and took[0]:
            return took[0]
        if not took:  # refused (the RAT expired or superseded), or no room: the secret may still give tokens
            try:  # not tried again within the hour; a full flash refusing this file is no error: the token
                # is kept in RAM until it runs out (no rotation before), only the next start asks again
                agent.store.write("rotate", {"at": agent.clock.now()})
            except OSError:
                pass
            if got:
                return got + (0,)
            held = True
        ids = agent.store.identities()
    for attempt in (0, 1):
        moved = agent.clock.offset_ms  # the clock as it was: an answer may set it from the gateway's time
        for i, ident in enumerate(ids):
            try:
                got = request_token(agent, ident)
            except ConfigError as e:  # RSA: this identity's key file is damaged or gone
                if len(ids) < 2:
                    raise
                agent._warn("%s; trying the other stored identity" % e.message)
                continue
            if got:
                if i:  # the newer secret is refused, an older one works: go back to it
                    agent.store.save_current(ident)
                got = _confirmed(agent, ident, got)
                return got[:2] + (0,) if held else got  # held: no rotation until the token runs out
        skew = agent.clock.last_skew_s
        moved = moved != agent.clock.offset_ms  # then skew was measured before, and is taken already
        if attempt or not moved and (skew is None or -60 <= skew <= 60):
            break
        # every secret refused and the gateway's clock differs: take the gateway's time and retry
        if not moved:
            agent._warn("clock differs from the gateway by %d s; using the gateway's time" % skew)
            agent.clock.offset_ms += skew * 1000
    waits = took == 0
    for ident in ids:
        if took:
            break
        took = _rotated_token(agent, ident)
        if took and took[0]:
            return took[0]
        waits = waits or took == 0
    if took:
        # The hub issued a secret in this pass and then refused a token for it: not an offboarded agent
        # but IAM out of step (a new secret not yet everywhere, an outage answering 400). The credentials
        # stay, the agent backs off and tries again; NEEDS_KEY would end in a visit with a new key.
        agent._bearer = None
        raise AuthError("the token endpoint refused the secret the hub has just issued: trying again later")
    if waits:
        # no room on flash for a new secret (the spools took it): the hub's rules let a stored RAT rotate
        # once there is room, so this is no NEEDS_KEY (a visit); the next upload tries again
        err = MindConnectError("every stored secret was refused and the key rotation waits for room on flash")
        err.retryable = True
        raise err
    reason = "every stored credential was refused"
    cur = agent.store.current()
    c = agent.clock
    agent.store.write(credentials.NEEDS_KEY,  # key_fp: the spent key's; at: for onboard's retry a day later
                      {"reason": reason, "key_fp": cur.key_fp if cur else None, "at": c.now() if c.is_set() else None})
    agent._bearer = None
    agent._warn(reason)
    raise OnboardingRequired("%s: %s" % (reason, msg(_W, 0)))
