"""The agent-management (IAM) side: onboarding keys, register, client assertions, access tokens,
rotation. Every function takes the hub (store, clock, signing key, settings) and a Request and
returns a Response; refusals are `HubError`s carrying the cloud's status and error body.
"""

import json
import secrets
import urllib.parse
import uuid

from tools.mockhub import jwts

AM = "/api/agentmanagement/v3"
LEEWAY_S = 60
IAT_LIFETIME_S = 7 * 86400
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PREVIOUS_SECRET_POLICIES = ("until_new_used", "never", "always")
PROFILES = ("SHARED_SECRET", "RSA_3072")


class HubError(Exception):
    """A refusal: status, a machine word (`error`) and a message for the user (never a secret)."""

    def __init__(self, status, message, error="invalid_request", headers=()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.headers = list(headers)


def iso(ts):
    import datetime
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def new_agent(hub, name, secret_lifetime_s, token_lifetime_s, profile, previous_secret_valid):
    if profile not in PROFILES:
        raise ValueError("profile must be one of %s" % ", ".join(PROFILES))
    if previous_secret_valid not in PREVIOUS_SECRET_POLICIES:
        raise ValueError("previous_secret_valid must be one of %s" % ", ".join(PREVIOUS_SECRET_POLICIES))
    if int(secret_lifetime_s) < 1 or int(token_lifetime_s) < 1:
        raise ValueError("lifetimes must be at least 1 second")
    client_id = uuid.uuid4().hex
    agent = {"client_id": client_id, "name": name or "agent-" + client_id[:8], "tenant": hub.tenant,
             "profile": profile, "created": hub.now(), "secret_lifetime_s": int(secret_lifetime_s),
             "token_lifetime_s": int(token_lifetime_s), "previous_secret_valid": previous_secret_valid,
             "rotations": 0, "tokens_issued": 0, "last_token_at": None, "last_exchange_at": None,
             "errors": 0, "dsc": None}
    _new_onboarding_key(hub, agent)
    return agent


def _new_onboarding_key(hub, agent):
    now = int(hub.now())
    iat = jwts.sign_rs256(hub.signing_key, {
        "jti": uuid.uuid4().hex, "sub": agent["client_id"], "ten": agent["tenant"], "iat": now,
        "exp": now + IAT_LIFETIME_S, "cat": "initial-access-token:v1", "iss": hub.base_url + AM + "/"})
    agent.update({"iat": iat, "iat_exp": now + IAT_LIFETIME_S, "iat_used": False, "onboarded": False,
                  "current": None, "previous": None, "new_used": False})


def reset(hub, agent):
    """Offboard: credentials gone, tokens revoked, a fresh onboarding key; received data stay."""
    _new_onboarding_key(hub, agent)
    hub.store.execute("UPDATE tokens SET revoked=1 WHERE client_id=?", (agent["client_id"],))


def onboarding_key(hub, agent):
    return {"content": {"baseUrl": hub.base_url, "iat": agent["iat"],
                        "clientCredentialProfile": [agent["profile"]], "clientId": agent["client_id"],
                        "tenant": agent["tenant"]},
            "expiration": iso(agent["iat_exp"])}


def _bearer(req):
    auth = req.header("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        return None
    return auth[7:].strip()


def _json_body(req):
    try:
        doc = json.loads(req.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HubError(400, "request body is not JSON") from None
    if not isinstance(doc, dict):
        raise HubError(400, "request body must be a JSON object")
    return doc


def _jwk_from(body, agent):
    if agent["profile"] != "RSA_3072":
        if "jwks" in body:
            raise HubError(400, "this agent's profile is SHARED_SECRET: send {} without jwks")
        return None
    keys = (body.get("jwks") or {}).get("keys") if isinstance(body.get("jwks"), dict) else None
    if not isinstance(keys, list) or len(keys) != 1:
        raise HubError(400, "RSA_3072 agents must send jwks with exactly one RSA public key")
    try:
        jwts.jwk_public_key(keys[0])
    except jwts.JWTError as e:
        raise HubError(400, str(e)) from None
    return keys[0]


def _issue_credential(hub, agent, jwk):
    now = int(hub.now())
    gen = agent["rotations"] + 1
    rat = jwts.sign_rs256(hub.signing_key, {
        "jti": uuid.uuid4().hex, "sub": agent["client_id"], "ten": agent["tenant"], "iat": now,
        "cat": "registration-access-token:v1", "iss": hub.base_url + AM + "/"})
    return {"gen": gen, "secret": secrets.token_urlsafe(32) if agent["profile"] == "SHARED_SECRET" else None,
            "rat": rat, "expires_at": now + agent["secret_lifetime_s"], "jwk": jwk}


def _client_identifier(hub, agent):
    cred = agent["current"]
    out = {"client_id": agent["client_id"]}
    if cred["secret"] is not None:
        out["client_secret"] = cred["secret"]
    out.update({"client_secret_expires_at": cred["expires_at"], "registration_access_token": cred["rat"],
                "registration_client_uri": hub.base_url + AM + "/register/" + agent["client_id"],
                "grant_types": [agent["profile"]],
                "token_endpoint_auth_method": "client_secret_jwt" if cred["secret"] else "private_key_jwt"})
    return out


def register(hub, req):
    iat = _bearer(req)
    agent = None
    if iat:
        try:
            sub = jwts.Parsed(iat).claims.get("sub")
        except jwts.JWTError:
            sub = None
        agent = hub.store.agent(sub) if isinstance(sub, str) else None
    if agent is None or agent["iat"] != iat:
        raise HubError(401, "initial access token unknown: copy the onboarding key again from the mock hub",
                       "token_validation_failed")
    if agent["iat_used"]:
        raise HubError(401, "[%s] initial access token already used: reset the agent for a new key"
                       % agent["client_id"], "token_validation_failed")
    if hub.now() > agent["iat_exp"]:
        raise HubError(401, "[%s] initial access token expired: reset the agent for a new key"
                       % agent["client_id"], "token_validation_failed")
    jwk = _jwk_from(_json_body(req), agent)
    agent["current"] = _issue_credential(hub, agent, jwk)
    agent.update({"iat_used": True, "onboarded": True, "previous": None, "new_used": False})
    hub.store.put_agent(agent)
    return 201, _client_identifier(hub, agent), agent


def rotate(hub, req, client_id):
    agent = hub.store.agent(client_id)
    rat = _bearer(req)
    held = None
    if agent and rat:
        held = next((c for c in (agent["current"], agent["previous"]) if c and c["rat"] == rat), None)
    if held is None:
        raise HubError(401, "registration access token not valid for this agent (superseded or unknown): "
                       "use the latest one, or onboard again", "invalid_token")
    body = _json_body(req)
    if "client_id" in body and body["client_id"] != client_id:
        raise HubError(400, "client_id in the body does not match the registration URI")
    jwk = _jwk_from(body, agent)
    agent["rotations"] += 1
    agent["previous"] = held
    agent["current"] = _issue_credential(hub, agent, jwk)
    agent["new_used"] = False
    hub.store.put_agent(agent)
    return 200, _client_identifier(hub, agent), agent


def _form(body):
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise HubError(400, "form body must be ASCII (percent-encode other bytes)") from None
    out = {}
    for pair in text.strip().split("&"):
        if not pair:
            continue
        k, _, v = pair.partition("=")
        out[urllib.parse.unquote_plus(k)] = urllib.parse.unquote_plus(v)
    return out


def assertion_client(req):
    """The client id an assertion claims (unverified), for fault matching; None if unreadable."""
    try:
        return jwts.Parsed(_form(req.body).get("client_assertion", "")).claims.get("iss")
    except (HubError, jwts.JWTError):
        return None


def _check_claims(claims, agent, now):
    if claims.get("sub") != agent["client_id"]:
        raise HubError(400, "assertion sub must equal iss (the client id)", "invalid_client")
    if claims.get("ten") != agent["tenant"]:
        raise HubError(400, "assertion ten does not name the agent's tenant", "invalid_client")
    aud = claims.get("aud")
    if aud != "southgate" and not (isinstance(aud, list) and "southgate" in aud):
        raise HubError(400, 'assertion aud must be "southgate" or contain it', "invalid_client")
    for k in ("iat", "exp"):
        if not isinstance(claims.get(k), (int, float)) or isinstance(claims.get(k), bool):
            raise HubError(400, "assertion claim %s must be a number (epoch seconds)" % k, "invalid_client")
    if claims["iat"] > now + LEEWAY_S or claims.get("nbf", 0) > now + LEEWAY_S:
        raise HubError(400, "assertion iat/nbf is in the future by more than %d s: check the device clock"
                       % LEEWAY_S, "invalid_client")
    if claims["exp"] < now - LEEWAY_S:
        raise HubError(400, "assertion expired: check the device clock", "invalid_client")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise HubError(400, "assertion jti is missing", "invalid_client")


def _usable_credentials(agent, now):
    """(credential, is_current) pairs the token endpoint accepts, newest first; expired ones left out."""
    out = []
    if agent["current"]:
        out.append((agent["current"], True))
    policy = agent["previous_secret_valid"]
    if agent["previous"] and (policy == "always" or (policy == "until_new_used" and not agent["new_used"])):
        out.append((agent["previous"], False))
    usable = [(c, cur) for c, cur in out if c["expires_at"] > now]
    if out and not usable:
        raise HubError(400, "client secret expired: rotate before client_secret_expires_at, or onboard again",
                       "invalid_client")
    return usable


def token(hub, req):
    ctype = req.header("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HubError(400, "Content-Type must be application/x-www-form-urlencoded")
    form = _form(req.body)
    if form.get("grant_type") != "client_credentials":
        raise HubError(400, "grant_type must be client_credentials", "unsupported_grant_type")
    if form.get("client_assertion_type") != JWT_BEARER:
        raise HubError(400, "client_assertion_type must be " + JWT_BEARER)
    try:
        parsed = jwts.Parsed(form.get("client_assertion", ""))
    except jwts.JWTError as e:
        raise HubError(400, "client_assertion: %s" % e, "invalid_client") from None
    claims = parsed.claims
    agent = hub.store.agent(claims.get("iss")) if isinstance(claims.get("iss"), str) else None
    if agent is None or not agent["onboarded"]:
        raise HubError(400, "assertion iss is not an onboarded client id", "invalid_client")
    now = hub.now()
    _check_claims(claims, agent, now)
    if parsed.alg not in ("HS256", "RS256", "RS384"):
        raise HubError(400, "assertion alg must be HS256, RS256 or RS384", "invalid_client")
    matched = None
    for cred, is_current in _usable_credentials(agent, now):
        if parsed.alg == "HS256" and cred["secret"] is not None and parsed.verify_hs256(cred["secret"]):
            matched = is_current
        elif parsed.alg != "HS256" and cred["jwk"] and parsed.verify_rsa(jwts.jwk_public_key(cred["jwk"])):
            matched = is_current
        if matched is not None:
            break
    if matched is None:
        raise HubError(400, "assertion signature does not verify with a valid secret or key", "invalid_client")
    with hub.store.transaction() as db:
        if db.execute("SELECT 1 FROM jtis WHERE client_id=? AND jti=?", (agent["client_id"], claims["jti"])) \
                .fetchone():
            raise HubError(400, "assertion jti was used before (replay): make a new assertion", "invalid_client")
        db.execute("INSERT INTO jtis VALUES (?,?,?)", (agent["client_id"], claims["jti"], int(claims["exp"])))
        iat = int(now)
        jti = uuid.uuid4().hex
        access = jwts.sign_rs256(hub.signing_key, {
            "jti": jti, "scope": ["mdsp:core:DefaultAgent"], "iss": hub.base_url + "/api/agentmanagement/",
            "sub": agent["client_id"], "zid": "agentiam", "aud": ["southgate"], "iat": iat,
            "exp": iat + agent["token_lifetime_s"], "schemas": ["urn:siemens:mindsphere:iam:v1"],
            "ten": agent["tenant"], "ten_ctx": "main-tenant", "cat": "agent-token:v1",
            "grant_type": "client_credentials"})
        db.execute("INSERT INTO tokens (jti, client_id, iat, exp) VALUES (?,?,?,?)",
                   (jti, agent["client_id"], iat, iat + agent["token_lifetime_s"]))
        if matched:
            agent["new_used"] = True
        agent["tokens_issued"] += 1
        agent["last_token_at"] = now
        hub.store.put_agent(agent, db)
    return 200, {"access_token": access, "token_type": "Bearer", "expires_in": agent["token_lifetime_s"],
                 "jti": jti, "scope": ["mdsp:core:DefaultAgent"]}, agent


def authorize(hub, req):
    """The agent doc of a valid access token in Authorization; HubError 401 otherwise."""
    tok = _bearer(req)
    if not tok:
        raise HubError(401, "Authorization: Bearer <access token> is missing")
    try:
        parsed = jwts.Parsed(tok)
    except jwts.JWTError:
        raise HubError(401, "access token is not a JWT: get a new one from /oauth/token") from None
    if parsed.alg != "RS256" or not parsed.verify_rsa(hub.signing_key.public_key()):
        raise HubError(401, "access token signature is not the hub's: get a new one from /oauth/token")
    rows = hub.store.query("SELECT client_id, exp, revoked FROM tokens WHERE jti=?", (parsed.claims.get("jti"),))
    if not rows or rows[0][2]:
        raise HubError(401, "access token revoked: get a new one from /oauth/token")
    if hub.now() >= rows[0][1]:
        raise HubError(401, "access token expired: get a new one from /oauth/token")
    agent = hub.store.agent(rows[0][0])
    if agent is None or not agent["onboarded"]:
        raise HubError(401, "agent was reset: onboard again")
    return agent


def token_client(req):
    """The client id in a bearer token (unverified), for fault matching."""
    tok = _bearer(req)
    try:
        return jwts.Parsed(tok).claims.get("sub") if tok else None
    except jwts.JWTError:
        return None
