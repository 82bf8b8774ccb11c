# mockhub core: onboarding, tokens, DSC, mappings and exchange against the running server (real TLS,
# real sockets on 127.0.0.1), over one keep-alive connection as the agent uses it.
import json

from fixtures_mockhub import AM, MC, Agent, dsc_doc, exchange_body, ts_item

from tools.mockhub import jwts


def test_onboard_token_dsc_exchange_on_one_connection(mockhub, vectors_dir):
    a = Agent(mockhub)
    key = a.key
    assert list(key) == ["content", "expiration"]
    assert list(key["content"]) == ["baseUrl", "iat", "clientCredentialProfile", "clientId", "tenant"]
    assert key["content"]["baseUrl"] == mockhub.base_url and key["content"]["clientCredentialProfile"] == [
        "SHARED_SECRET"]

    mockhub.set_clock(int(mockhub.now()))  # frozen: the expiry is checked to the second
    creds = a.onboard()
    assert creds["client_id"] == a.id
    assert creds["registration_client_uri"] == mockhub.base_url + AM + "/register/" + a.id
    assert creds["client_secret_expires_at"] == int(mockhub.now()) + 7 * 86400

    status, headers, doc = a.get_token()
    assert status == 200, doc
    assert doc["token_type"] == "Bearer" and doc["expires_in"] == 3600 and doc["scope"]
    assert abs(int(headers["server-time"]) - mockhub.now()) <= 2
    claims = jwts.Parsed(doc["access_token"])
    assert claims.alg == "RS256" and claims.claims["sub"] == a.id
    assert claims.claims["exp"] == claims.claims["iat"] + 3600

    status, got = a.client.json("GET", AM + "/agents/%s/dataSourceConfiguration" % a.id, token=a.token)
    assert status == 200 and got["eTag"] == "0" and got["dataSources"] == []
    status, got = a.put_dsc(dsc_doc(), "0")
    assert status == 200 and got["eTag"] == "1" and got["configurationId"] == "cfg-1"

    spec = json.loads((vectors_dir / "exchange_timeseries_event.json").read_text())
    body = (vectors_dir / spec["body_file"]).read_bytes()
    status, headers, data = a.exchange(body, None, spec["request_headers"]["Content-Type"])
    assert (status, data, headers["content-length"]) == (200, b"", "0")
    assert mockhub.timeseries(a.id) == [("2026-11-25T06:02:51.272Z", "temp", "21.5", "0"),
                                        ("2026-11-25T06:02:51.272Z", "hum", "40", "0"),
                                        ("2026-11-25T06:03:51.000Z", "temp", "21.75", "0")]
    events = mockhub.events(a.id)
    assert [e["description"] for e in events] == ["temp above 30"]
    assert mockhub.dropped(a.id) == []

    c = mockhub.counters()
    assert c["connections"] == 1 and c["handshakes"] == 1
    assert c["requests_per_connection"] == [c["requests"]] and c["requests"] == 5
    assert c["endpoints"]["exchange"] == 1 and c["endpoints"]["token"] == 1
    st = mockhub.agent_state(a.id)
    assert st["onboarded"] and st["tokens_issued"] == 1 and st["last_exchange_at"] is not None
    assert creds["client_secret"] not in json.dumps(st)


def test_onboarding_key_works_once(mockhub):
    a = Agent(mockhub)
    a.onboard()
    status, doc = a.client.json("POST", AM + "/register", {}, token=a.key["content"]["iat"])
    assert status == 401 and doc["error"] == "token_validation_failed" and a.id in doc["error_description"]
    status, doc = a.client.json("POST", AM + "/register", {}, token="not-a-token")
    assert status == 401
    assert [r["status"] for r in mockhub.rejected(a.id)] == [401]


def test_reset_gives_a_new_key_and_revokes_tokens(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    new = mockhub.reset_agent(a.id)
    assert new["onboarding_key"]["content"]["iat"] != a.key["content"]["iat"]
    status, _, _ = a.exchange(b"", "x")
    assert status == 401
    assert not mockhub.agent_state(a.id)["onboarded"]
    status, doc = a.client.json("POST", AM + "/register", {}, token=new["onboarding_key"]["content"]["iat"])
    assert status == 201


def test_dsc_etag_and_if_match(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    assert a.put_dsc(dsc_doc(), "0")[0] == 200
    status, doc = a.put_dsc(dsc_doc("cfg-2"), "0")
    assert status == 412 and "eTag" in doc["message"]
    status, doc = a.put_dsc(dsc_doc("cfg-2"), '"1"')
    assert status == 200 and doc["eTag"] == "2"
    status, doc = a.client.json("PUT", AM + "/agents/%s/dataSourceConfiguration" % a.id, dsc_doc(), token=a.token)
    assert status == 400 and "If-Match" in doc["message"]
    bad = dsc_doc()
    del bad["dataSources"][0]["dataPoints"][0]["unit"]
    status, doc = a.put_dsc(bad, "2")
    assert status == 400 and "unit" in doc["message"]
    other = Agent(mockhub, client=a.client)
    status, doc = a.client.json("GET", AM + "/agents/%s/dataSourceConfiguration" % other.id, token=a.token)
    assert status == 403
    assert [h["eTag"] for h in mockhub.dsc_history(a.id)] == ["1", "2"]
    assert mockhub.dsc(a.id)["configurationId"] == "cfg-2"


def test_mappings_post_get_delete_and_dsc_put_drops_unkept(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    a.put_dsc(dsc_doc(), "0")

    def mapping(dp, keep):
        return {"agentId": a.id, "dataPointId": dp, "entityId": "e" * 32, "propertySetName": "env",
                "propertyName": dp, "keepMapping": keep}

    status, m1 = a.client.json("POST", MC + "/dataPointMappings", mapping("temp", True), token=a.token)
    assert status == 201 and m1["validity"]["status"] == "VALID" and m1["dataPointType"] == "DOUBLE"
    assert a.client.json("POST", MC + "/dataPointMappings", mapping("temp", True), token=a.token)[0] == 409
    status, m2 = a.client.json("POST", MC + "/dataPointMappings", mapping("hum", False), token=a.token)
    assert status == 201
    status, page = a.client.json("GET", MC + '/dataPointMappings?size=2000&filter={"agentId":"%s"}' % a.id,
                                 token=a.token)
    assert status == 200 and page["totalElements"] == 2 and {m["id"] for m in page["content"]} == {m1["id"], m2["id"]}
    a.put_dsc(dsc_doc("cfg-2"), "1")
    assert [m["id"] for m in mockhub.mappings(a.id)] == [m1["id"]]
    status, _, body = a.client.request("DELETE", MC + "/dataPointMappings/" + m1["id"], token=a.token)
    assert status == 204 and body == b""
    assert a.client.request("DELETE", MC + "/dataPointMappings/" + m1["id"], token=a.token)[0] == 404
    assert mockhub.mappings(a.id) == []


def test_exchange_needs_a_valid_token(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    body = exchange_body([ts_item([("temp", "1.5", "0")])])
    a.put_dsc(dsc_doc(), "0")
    mockhub.expire_token(a.id)
    status, _, data = a.exchange(body, "BBBBBBBBBBBBBBBBBBBB")
    assert status == 401 and "revoked" in json.loads(data)["message"]
    a.get_token()
    mockhub.advance_clock(3600)
    assert a.exchange(body, "BBBBBBBBBBBBBBBBBBBB")[0] == 401
    a.get_token()
    assert a.exchange(body, "BBBBBBBBBBBBBBBBBBBB")[0] == 200
    a.token = a.token[:-4] + ("AAAA" if not a.token.endswith("AAAA") else "BBBB")
    assert a.exchange(body, "BBBBBBBBBBBBBBBBBBBB")[0] == 401
    assert mockhub.timeseries(a.id) == [("2026-11-25T06:02:51.272Z", "temp", "1.5", "0")]


def test_state_survives_a_restart(mockhub, tmp_path):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    a.put_dsc(dsc_doc(), "0")
    assert a.exchange(exchange_body([ts_item([("temp", "2.5", "0")])]), "BBBBBBBBBBBBBBBBBBBB")[0] == 200
    ca = mockhub.ca_der
    mockhub.stop()
    from tools.mockhub import MockHub
    with MockHub(tmp_path / "mockhub-state") as again:
        assert again.ca_der == ca
        assert again.timeseries(a.id) == [("2026-11-25T06:02:51.272Z", "temp", "2.5", "0")]
        b = Agent.__new__(Agent)
        b.__dict__.update(a.__dict__)
        from fixtures_mockhub import HubClient
        b.hub, b.client = again, HubClient(again)
        status, _, doc = b.get_token()
        assert status == 200, doc
        assert b.exchange(exchange_body([ts_item([("temp", "3.5", "0")])]), "BBBBBBBBBBBBBBBBBBBB")[0] == 200
        assert len(again.timeseries(a.id)) == 2


def test_chunked_request_body_and_expect_continue(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    a.put_dsc(dsc_doc(), "0")
    body = exchange_body([ts_item([("temp", "4.5", "0")])])
    conn = a.client.conn
    conn.request("POST", MC + "/exchange", body=iter([body[:100], body[100:]]), encode_chunked=True,
                 headers={"Authorization": "Bearer " + a.token, "Expect": "100-continue",
                          "Content-Type": "multipart/mixed; boundary=BBBBBBBBBBBBBBBBBBBB"})
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"")
    assert mockhub.timeseries(a.id) == [("2026-11-25T06:02:51.272Z", "temp", "4.5", "0")]
    assert a.client.request("GET", AM + "/oauth/token_key")[0] == 200  # same connection still in step
    assert mockhub.counters()["connections"] == 1
