# mockhub IAM side: client assertions in every shape the official clients send, each refusal (400 with
# an OAuth error body and Server-Time), RSA agents, secret expiry, and rotation semantics.
import json
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fixtures_mockhub import AM, Agent, b64url, hs256_assertion, token_form


def _onboarded(hub, **kw):
    a = Agent(hub, **kw)
    a.onboard()
    return a


def test_assertion_shapes_of_the_official_clients_are_accepted(mockhub):
    a = _onboarded(mockhub)
    assert a.get_token(a.assertion(), percent=True)[0] == 200            # Node: URLSearchParams
    assert a.get_token(a.assertion(), percent=False)[0] == 200           # MCL: raw form values
    assert a.get_token(a.assertion(pad=True, aud="southgate"))[0] == 200  # MCL: padded segments, aud string
    assert a.get_token(a.assertion(lifetime=86400))[0] == 200
    assert mockhub.agent_state(a.id)["tokens_issued"] == 4


def _refused(a, assertion, words, body=None, ctype="application/x-www-form-urlencoded"):
    status, headers, body = a.client.request("POST", AM + "/oauth/token", body or token_form(assertion),
                                             {"Content-Type": ctype})
    doc = json.loads(body)
    assert status == 400, doc
    assert set(doc) == {"error", "error_description"} and words in doc["error_description"], doc
    assert "server-time" in headers and headers["content-length"] == str(len(body))
    return doc


def test_every_assertion_failure_is_400(mockhub):
    mockhub.set_clock(1800000000)  # frozen: the leeway edges below are exact
    a = _onboarded(mockhub)
    now = mockhub.now()
    secret = a.creds["client_secret"]
    _refused(a, a.assertion(secret="wrong"), "signature")
    _refused(a, hs256_assertion("unknown", a.tenant, secret, now), "iss")
    _refused(a, a.assertion(sub="someone-else"), "sub")
    _refused(a, a.assertion(ten="other-tenant"), "ten")
    _refused(a, a.assertion(aud=["northgate"]), "aud")
    _refused(a, a.assertion(iat=int(now) + 61, nbf=int(now) + 61), "future")
    _refused(a, a.assertion(nbf=int(now) + 120), "future")
    _refused(a, a.assertion(exp=int(now) - 61), "expired")
    _refused(a, a.assertion(iat="yesterday"), "iat")
    _refused(a, a.assertion(jti=""), "jti")
    _refused(a, a.assertion(alg_header={"alg": "none", "typ": "JWT"}), "alg")
    _refused(a, "only.two", "three")
    _refused(a, None, "grant_type", body=token_form(a.assertion()).replace(b"client_credentials", b"password"))
    _refused(a, None, "Content-Type", body=token_form(a.assertion()), ctype="application/json")
    used = a.assertion()
    assert a.get_token(used)[0] == 200
    _refused(a, used, "replay")
    # within the 60 s leeway both ways
    assert a.get_token(a.assertion(iat=int(now) + 59, nbf=int(now) + 59))[0] == 200
    assert a.get_token(a.assertion(exp=int(now) - 59))[0] == 200
    rejected = mockhub.rejected(a.id)
    assert len(rejected) == 13 and len(mockhub.rejected()) == 15  # two named no known agent
    assert all(r["status"] == 400 and r["endpoint"] == "token" for r in rejected)
    assert secret not in json.dumps(rejected)


def _rsa_assertion(a, key, alg, **claims):
    header = {"alg": alg, "typ": "JWT"}
    now = int(a.hub.now())
    body = {"iss": a.id, "sub": a.id, "aud": ["southgate"], "iat": now, "nbf": now, "exp": now + 3600,
            "schemas": ["urn:siemens:mindsphere:v1"], "ten": a.tenant, "jti": "jti-%s-%d" % (alg, now)}
    body.update(claims)
    si = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(body).encode())
    h = hashes.SHA256() if alg == "RS256" else hashes.SHA384()
    return si + "." + b64url(key.sign(si.encode(), padding.PKCS1v15(), h))


def _jwk(key):
    n = key.public_key().public_numbers().n
    return {"e": "AQAB", "n": b64url(n.to_bytes((n.bit_length() + 7) // 8, "big")), "kty": "RSA",
            "kid": "mindconnect-key-1"}


def test_rsa_agent_registers_a_jwk_and_signs_rs256_and_rs384(mockhub):
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    a = Agent(mockhub, profile="RSA_3072")
    assert a.key["content"]["clientCredentialProfile"] == ["RSA_3072"]
    status, doc = a.client.json("POST", AM + "/register", {}, token=a.key["content"]["iat"])
    assert status == 400 and "jwks" in doc["error_description"]
    a.key = mockhub.reset_agent(a.id)["onboarding_key"]
    status, creds = a.client.json("POST", AM + "/register", {"jwks": {"keys": [_jwk(key)]}},
                                  token=a.key["content"]["iat"])
    assert status == 201 and "client_secret" not in creds and creds["client_secret_expires_at"] > mockhub.now()
    a.creds = creds
    assert a.get_token(_rsa_assertion(a, key, "RS256"))[0] == 200
    assert a.get_token(_rsa_assertion(a, key, "RS384"))[0] == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _refused(a, _rsa_assertion(a, other, "RS256", jti="x1"), "signature")
    # N re-sends the same key on rotation; the expiry grows
    status, rotated = a.client.json("PUT", creds["registration_client_uri"].split(str(mockhub.port))[1],
                                    {"client_id": a.id, "jwks": {"keys": [_jwk(key)]}},
                                    token=creds["registration_access_token"])
    assert status == 200 and rotated["registration_access_token"] != creds["registration_access_token"]


def _rotate(a, rat, body=None):
    return a.client.json("PUT", AM + "/register/" + a.id, {"client_id": a.id} if body is None else body, token=rat)


def test_rotation_keeps_x_and_new_valid_and_rejects_superseded(mockhub):
    a = _onboarded(mockhub)
    A = a.creds
    status, B = _rotate(a, A["registration_access_token"])
    assert status == 200 and B["client_secret"] != A["client_secret"]
    assert B["client_secret_expires_at"] >= A["client_secret_expires_at"]
    # the previous secret works until a token is obtained with the new one
    assert a.get_token(a.assertion(secret=A["client_secret"]))[0] == 200
    assert a.get_token(a.assertion(secret=B["client_secret"]))[0] == 200
    _refused(a, a.assertion(secret=A["client_secret"]), "signature")
    # rotating with A again succeeds (N's recovery) and supersedes B
    status, C = _rotate(a, A["registration_access_token"])
    assert status == 200
    status, doc = _rotate(a, B["registration_access_token"])
    assert status == 401 and "superseded" in doc["error_description"]
    _refused(a, a.assertion(secret=B["client_secret"]), "signature")
    assert a.get_token(a.assertion(secret=C["client_secret"]))[0] == 200
    assert _rotate(a, A["registration_access_token"])[0] == 200
    # G omits client_id (accepted); a different client_id is refused
    assert _rotate(a, A["registration_access_token"], {})[0] == 200
    assert _rotate(a, A["registration_access_token"], {"client_id": "other"})[0] == 400
    assert mockhub.agent_state(a.id)["rotations"] == 4


def test_previous_secret_policies(mockhub):
    for policy, previous_works_after_new_used in (("never", None), ("always", True)):
        a = _onboarded(mockhub, previous_secret_valid=policy)
        A = a.creds
        _, B = _rotate(a, A["registration_access_token"])
        if previous_works_after_new_used is None:
            _refused(a, a.assertion(secret=A["client_secret"]), "signature")
        else:
            assert a.get_token(a.assertion(secret=B["client_secret"]))[0] == 200
            assert a.get_token(a.assertion(secret=A["client_secret"]))[0] == 200


def test_secret_expiry_refuses_tokens_but_the_rat_still_rotates(mockhub):
    a = _onboarded(mockhub, secret_lifetime_s=100, token_lifetime_s=30)
    status, _, doc = a.get_token()
    assert status == 200 and doc["expires_in"] == 30
    mockhub.advance_clock(101)
    _refused(a, a.assertion(), "expired")
    status, new = _rotate(a, a.creds["registration_access_token"])
    assert status == 200 and new["client_secret_expires_at"] == int(mockhub.now()) + 100
    assert a.get_token(a.assertion(secret=new["client_secret"]))[0] == 200


def test_token_key_is_a_one_line_pem_that_verifies_tokens(mockhub):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    a = _onboarded(mockhub)
    _, _, tok = a.get_token()
    status, doc = a.client.json("GET", AM + "/oauth/token_key?")
    assert status == 200 and "\n" not in doc["value"] and doc["value"].startswith("-----BEGIN PUBLIC KEY-----")
    body = doc["value"][len("-----BEGIN PUBLIC KEY-----"):-len("-----END PUBLIC KEY-----")]
    pem = "-----BEGIN PUBLIC KEY-----\n" + body + "\n-----END PUBLIC KEY-----\n"
    pub = load_pem_public_key(pem.encode())
    head, claims, sig = tok["access_token"].split(".")
    import base64
    pub.verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)), (head + "." + claims).encode(),
               padding.PKCS1v15(), hashes.SHA256())
    assert urllib.parse.urlsplit(mockhub.base_url).hostname == "localhost"
