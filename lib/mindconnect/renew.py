"""New access tokens, secret rotation and recovery: loaded by Agent.authorize on demand, then dropped.

The steady wake cycle takes its token from flash; this code is needed about once an hour.

RSA_3072 identities (ident.kid set) sign RS256 with their key from flash (mindconnect.rsa, imported
here only for them). A rotation registers the next key when provisioning left one (rsa.RSA_NEXT),
else the same key again. The next key's kid is persisted as pending before the PUT; after the 200 the
new identity (naming that kid) is saved and pending removed; once a token was obtained with it, the
next key file replaces the old one. A pending kid found later means a rotation was cut short: it is
done again at the next renewal, with the same key.
"""

from mindconnect import jsonw
from mindconnect.agent import NEW_KEY, split_url
from mindconnect.errors import OnboardingRequired, ProtocolError

_AM = "/api/agentmanagement/v3"
_FORM_HEAD = ("grant_type=client_credentials&client_assertion_type="
              "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=")


def _ensure_time(agent):
    """Never sign with an unset clock: learn the time from the gateway first."""
    if not agent.clock.is_set():
        agent._call("GET", _AM + "/oauth/token_key")
    if not agent.clock.is_set():
        raise ProtocolError("the clock is not set and the gateway sent no Date: set the time (NTP) first")


def request_token(agent, ident):
    """(access token, expiry in seconds) for ident, saved; None when the hub refused the secret."""
    _ensure_time(agent)
    now = agent.clock.now()
    from mindconnect import jwt  # here, not at the top: a rotation's first TLS connection needs the heap

    secret = ident.client_secret
    if ident.kid:
        from mindconnect import rsa
        secret = rsa.key_for(agent.store, ident.kid)
    form = _FORM_HEAD + jwt.client_assertion(ident.client_id, ident.tenant, secret, now, jwt.uuid4(agent.rand))
    secret = None
    r = agent._call("POST", _AM + "/oauth/token", {"Content-Type": "application/x-www-form-urlencoded"}, form)
    form = None  # the heap of the signed form and of the answer's body goes to parsing and saving
    if r.status in (400, 401):
        return None
    if r.status != 200:
        raise agent._failure(r, "access token")
    doc = r.json()
    r = None
    token = doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProtocolError("the token endpoint sent no access_token")
    expires_at = now + int(doc.get("expires_in") or 3600)
    doc = None
    agent.store.save_token(ident.client_id, token, expires_at)
    return token, expires_at


def rotate(agent, ident):
    """Rotate with ident's registration access token; the new identity (saved) or None if refused."""
    from mindconnect.credentials import Identity

    kid, body = None, None
    if ident.kid:
        from mindconnect import rsa
        key = rsa.rotation_key(agent.store, ident.kid, agent._warn)
        kid, body = key.kid, rsa.jwks_body(key, ident.client_id)
        key = None
    agent._mark("rotate:before_put")
    _, _, path = split_url(ident.registration_client_uri)
    r = agent._call("PUT", path, {"Authorization": "Bearer " + ident.registration_access_token,
                                  "Content-Type": "application/json"},
                    body or jsonw.dumpb(jsonw.Obj(("client_id", ident.client_id))))
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
    # the identity whose RAT was used stays as the fallback until the new secret gave a token
    agent.store.save_previous(ident)
    agent.store.save_current(new)
    if kid:
        rsa.forget_pending(agent.store)  # kid is set: rsa was imported above
    agent.store.drop_token()
    agent._mark("rotate:after_save")
    agent.rotations += 1
    return new


def _confirmed(agent, ident, got):
    """A token was obtained with ident, the current identity: the fallback is no longer needed.
    Returns (token, its expiry, the secret's expiry) for agent._keep: nothing is read back from flash."""
    if agent.store.has_previous():
        agent._mark("rotate:after_token")
        agent.store.drop_previous()
    if ident.kid:
        from mindconnect import rsa
        rsa.promote(agent.store, ident.kid)
    return got + (ident.client_secret_expires_at,)


def _rotated_token(agent, ident):
    new = rotate(agent, ident)
    if new is not None:
        got = request_token(agent, new)
        if got:
            return _confirmed(agent, new, got)
    return None


def authorize(agent, ids, rotation_due):
    """Agent.authorize without a usable stored token: rotate when due (or an RSA rotation was cut short),
    else request; recover on refusal. Returns what agent._keep takes: (token, expiry, secret's expiry).

    When the secret is refused: the previous identity, then the gateway's time if the clocks differ,
    then rotation with any stored registration access token; when all fail, NEEDS_KEY (persisted)
    and OnboardingRequired.
    """
    pending = False
    if ids[0].kid:
        from mindconnect import rsa
        pending = rsa.pending(agent.store)
    if rotation_due or pending:
        token = _rotated_token(agent, ids[0])
        if token:
            return token
        ids = agent.store.identities()
    for attempt in (0, 1):
        for i, ident in enumerate(ids):
            got = request_token(agent, ident)
            if got:
                if i:  # the newer secret is refused, an older one works: go back to it
                    agent.store.save_current(ident)
                return _confirmed(agent, ident, got)
        skew = agent.clock.last_skew_s
        if attempt or skew is None or -60 <= skew <= 60:
            break
        # every secret refused and the gateway's clock differs: take the gateway's time and retry
        agent._warn("clock differs from the gateway by %d s; using the gateway's time" % skew)
        agent.clock.offset_ms += skew * 1000
    for ident in ids:
        token = _rotated_token(agent, ident)
        if token:
            return token
    reason = "every stored credential was refused"
    cur = agent.store.current()
    agent.store.set_needs_key(reason, cur.key_fp if cur else None)
    agent._bearer = None
    agent._warn(reason)
    raise OnboardingRequired("%s: %s" % (reason, NEW_KEY))
