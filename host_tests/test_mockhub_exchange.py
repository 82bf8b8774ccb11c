# mockhub exchange: bodies framed as the official clients frame them (written by hand from PROTOCOL.md
# Part B), every item kind, broken framing (400, nothing stored), invalid items (200 + recorded drop,
# or 400 in strict mode), the 10 MB limit, and the Node client's Event Management / IoT File calls.
import hashlib
import json

import pytest
from fixtures_mockhub import MC, Agent, dsc_doc, exchange_body, meta, ts_item

B = "BBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
def agent(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    assert a.put_dsc(dsc_doc(points=(("temp", "DOUBLE"), ("hum", "INT"), ("on", "BOOLEAN"), ("msg", "STRING"),
                                     ("seen", "TIMESTAMP"), ("big", "LONG"))), "0")[0] == 200
    return a


def test_node_client_body_lf_framing_and_pretty_meta(mockhub, agent):
    m = json.dumps(meta("standardTimeSeries", details={"configurationId": "cfg-1"}), indent=2)
    payload = json.dumps([{"timestamp": "2026-11-25T06:02:51.272Z",
                           "values": [{"dataPointId": "temp", "value": "20.5", "qualityCode": "0"}]}])
    body = ("--mindspheremessage\nContent-Type:multipart/related;boundary=mindspherepart\n\n"
            "--mindspherepart\nContent-Type:application/vnd.siemens.mindsphere.meta+json\n\n" + m + "\n\n"
            "--mindspherepart\nContent-Type:application/json\n\n" + payload + "\n\n\r\n"
            "--mindspherepart--\n--mindspheremessage--\n").encode()
    status, _, data = agent.exchange(body, None, "multipart/mixed; boundary=mindspheremessage")
    assert status == 200 and data == b""
    assert mockhub.timeseries(agent.id) == [("2026-11-25T06:02:51.272Z", "temp", "20.5", "0")]


def test_mcl_body_crlf_no_final_crlf_several_items(mockhub, agent):
    content = bytes(range(256)) * 3
    body = exchange_body([
        ts_item([("temp", "1.25", "00000000"), ("on", "true", "00000000")]),
        (meta("file", details={"fileName": "log.bin", "creationDate": "2026-11-25T06:00:00.000Z",
                               "fileType": "bin"}), "application/octet-stream", content),
        (meta("businessEvent", "2.0"), "application/json", json.dumps([
            {"id": "e1", "timestamp": "2026-11-25T06:00:00.000Z", "severity": 30, "description": "warn",
             "type": "MindSphereStandardEvent", "version": "1.0", "details": {}}]).encode()),
        (meta("myCustom", "2.1", {"k": "v"}), "text/csv", b"a,b\n1,2\n"),
    ], boundary="A1b2C3d4E5f6G7h8I9j0", final_nl=False)
    status, _, _ = agent.exchange(body, None, "multipart/mixed;boundary=A1b2C3d4E5f6G7h8I9j0;charset=utf-8")
    assert status == 200
    assert mockhub.timeseries(agent.id) == [("2026-11-25T06:02:51.272Z", "temp", "1.25", "00000000"),
                                            ("2026-11-25T06:02:51.272Z", "on", "true", "00000000")]
    f = mockhub.files(agent.id)[0]
    assert (f.name, f.size, f.sha256, f.file_type) == ("log.bin", 768, hashlib.sha256(content).hexdigest(), "bin")
    with open(f.path, "rb") as fh:
        assert fh.read() == content
    assert [e["severity"] for e in mockhub.events(agent.id)] == [30]
    c = mockhub.custom(agent.id)[0]
    assert (c["type"], c["version"], c["content_type"], c["size"], c["details"]) == ("myCustom", "2.1", "text/csv",
                                                                                     8, {"k": "v"})


def test_dsc_item_updates_the_agents_configuration(mockhub, agent):
    new = dsc_doc("cfg-9", (("pressure", "DOUBLE"),))
    body = exchange_body([(meta("dataSourceConfiguration"), "application/json", json.dumps(new).encode()),
                          ts_item([("pressure", "1013.2", "0")], config_id="cfg-9")])
    assert agent.exchange(body, B)[0] == 200
    assert mockhub.dsc(agent.id)["configurationId"] == "cfg-9" and mockhub.dsc(agent.id)["eTag"] == "2"
    assert mockhub.dsc_history(agent.id)[-1]["source"] == "exchange"
    assert mockhub.timeseries(agent.id) == [("2026-11-25T06:02:51.272Z", "pressure", "1013.2", "0")]


@pytest.mark.parametrize("body, words", [
    (exchange_body([ts_item([("temp", "1", "0")])])[:-30], "closing delimiter"),
    (b"junk\r\n" + exchange_body([ts_item([("temp", "1", "0")])]), "before the first delimiter"),
    (exchange_body([ts_item([("temp", "1", "0")])]) + b"trailing", "after the closing delimiter"),
    (exchange_body([ts_item([("temp", "1", "0")])]).replace(b"boundary=S0000", b"boundary=X0000"), "item 1"),
    (exchange_body([ts_item([("temp", "1", "0")])]).replace(b"multipart/related", b"text/plain"), "multipart/related"),
    (exchange_body([ts_item([("temp", "1", "0")])]).replace(b"mindsphere.meta+json", b"mindsphere.x"), "meta"),
    (exchange_body([({"type": "item"}, "application/json", b"[]")]), "version"),
    (exchange_body([(meta("standardTimeSeries"), "application/json", b"[]")]), "configurationId"),
    (exchange_body([(meta("file"), "application/octet-stream", b"x")]), "fileName"),
    (exchange_body([ts_item([("temp", "1", "0")])]).replace(b'"item"', b"item"), "meta is not JSON"),
    (exchange_body([(meta("standardTimeSeries", details={"configurationId": "cfg-1"}), "application/json",
                     b"[{oops")]), "payload is not JSON"),
    (exchange_body([(meta("x"), "multipart/mixed; boundary=zz", b"--zz--")]), "two levels"),
])
def test_broken_framing_or_meta_is_400(mockhub, agent, body, words):
    status, _, data = agent.exchange(body, B)
    doc = json.loads(data)
    assert status == 400 and words in doc["message"], doc
    assert mockhub.timeseries(agent.id) == [] and mockhub.files(agent.id) == [] and mockhub.custom(agent.id) == []
    assert mockhub.rejected(agent.id)[-1]["reason"] == doc["message"]


def test_nothing_of_a_refused_request_is_stored(mockhub, agent):
    good = [ts_item([("temp", "7", "0")]), (meta("file", details={"fileName": "f"}), "application/octet-stream", b"x"),
            (meta("dataSourceConfiguration"), "application/json", json.dumps(dsc_doc("cfg-2")).encode())]
    broken = (meta("businessEvent"), "application/json", b"{not json")
    status, _, data = agent.exchange(exchange_body(good + [broken]), B)
    assert status == 400 and "item 4: payload is not JSON" in json.loads(data)["message"]
    assert mockhub.timeseries(agent.id) == [] and mockhub.files(agent.id) == []
    assert mockhub.dsc(agent.id)["configurationId"] == "cfg-1" and mockhub.exchanges(agent.id) == []


def test_invalid_items_are_200_and_recorded_as_dropped(mockhub, agent):
    body = exchange_body([
        ts_item([("temp", "21.5", "0"), ("nope", "1", "0"), ("hum", "40.5", "0"), ("on", "yes", "0"),
                 ("big", "9223372036854775808", "0"), ("seen", "2026-11-25T06:00:00.000Z", "0"),
                 ("msg", 12, "0"), ("temp", "1", "zz-top")]),
        ts_item([("temp", "1", "0")], timestamp="2026-11-25 06:00:00"),
        ts_item([("temp", "1", "0")], config_id="cfg-other"),
        (meta("businessEvent"), "application/json", json.dumps([
            {"timestamp": "2026-11-25T06:00:00.000Z", "severity": 7, "type": "t", "version": "1"}]).encode()),
    ])
    status, _, _ = agent.exchange(body, B)
    assert status == 200
    assert mockhub.timeseries(agent.id) == [("2026-11-25T06:02:51.272Z", "temp", "21.5", "0"),
                                            ("2026-11-25T06:02:51.272Z", "seen", "2026-11-25T06:00:00.000Z", "0")]
    reasons = [(d["item"], d["reason"]) for d in mockhub.dropped(agent.id)]
    assert len(reasons) == 9
    text = " | ".join(r for _, r in reasons)
    for words in ("unknown dataPointId 'nope'", "not an integer (INT)", 'not "true" or "false"',
                  "out of range for LONG", "must be a JSON string", "qualityCode", "not YYYY-MM-DDTHH:MM:SS.mmmZ",
                  "unknown configurationId", "severity 7"):
        assert words in text, words
    # the agent sees the drops through diagnostics
    status, act = agent.client.json("POST", MC + "/diagnosticActivations", {"agentId": agent.id}, token=agent.token)
    assert status == 201 and act["status"] == "ACTIVE"
    assert agent.client.json("POST", MC + "/diagnosticActivations", {"agentId": agent.id}, token=agent.token)[0] == 409
    status, page = agent.client.json("GET", MC + "/diagnosticActivations/%s/messages?size=5" % act["id"],
                                     token=agent.token)
    assert status == 200 and page["totalElements"] == 9 and page["numberOfElements"] == 5 and not page["last"]
    assert all(m["state"] == "DROPPED" and m["severity"] == "ERROR" for m in page["content"])
    assert "nope" in page["content"][0]["message"]
    status, info = agent.client.json("GET", MC + "/diagnosticInformation", token=agent.token)
    assert status == 200 and info["content"][0]["agentId"] == agent.id
    status, act2 = agent.client.json("PUT", MC + "/diagnosticActivations/" + act["id"], {"status": "INACTIVE"},
                                     token=agent.token)
    assert status == 200 and act2["status"] == "INACTIVE"
    assert agent.client.request("DELETE", MC + "/diagnosticActivations/" + act["id"], token=agent.token)[0] == 204


def test_strict_mode_answers_400_and_stores_nothing(mockhub, agent):
    mockhub.strict = True
    body = exchange_body([ts_item([("temp", "21.5", "0"), ("nope", "1", "0")])])
    status, _, data = agent.exchange(body, B)
    assert status == 400 and "unknown dataPointId 'nope'" in json.loads(data)["message"]
    assert mockhub.timeseries(agent.id) == [] and mockhub.dropped(agent.id) == []


def test_ten_megabytes_is_the_limit(mockhub, agent):
    limit = 10 * 1024 * 1024
    empty = exchange_body([(meta("file", details={"fileName": "big.bin"}), "application/octet-stream", b"")])
    content = b"\xa5" * (limit - len(empty))
    body = exchange_body([(meta("file", details={"fileName": "big.bin"}), "application/octet-stream", content)])
    assert len(body) == limit
    assert agent.exchange(body, B)[0] == 200
    assert mockhub.files(agent.id)[0].sha256 == hashlib.sha256(content).hexdigest()
    status, headers, data = agent.exchange(body + b"\n", B)
    assert status == 413 and "split" in json.loads(data)["message"]
    assert len(mockhub.files(agent.id)) == 1
    # the connection stays usable after a 413
    assert agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)[0] == 200
    assert mockhub.counters()["connections"] == 1


def test_node_event_management_and_iot_file_calls(mockhub, agent):
    ev = {"entityId": "a" * 32, "timestamp": "2026-11-25T06:00:00.000Z", "severity": 20, "description": "hi",
          "source": "node"}
    status, doc = agent.client.json("POST", "/api/eventmanagement/v3/events?", ev, token=agent.token)
    assert status == 201 and doc["id"] and doc["description"] == "hi"
    assert agent.client.json("POST", "/api/eventmanagement/v3/events", {"entityId": "a"}, token=agent.token)[0] == 400
    headers = {"Content-Type": "application/octet-stream", "description": "d", "type": "text/plain",
               "timestamp": "2026-11-25T06:00:00.000Z"}
    path = "/api/iotfile/v3/files/%s/logs/a.txt" % ("a" * 32)
    status, h, _ = agent.client.request("PUT", path, b"v1", headers, token=agent.token)
    assert status == 201 and h["etag"] == "1"
    assert agent.client.request("PUT", path, b"v2", dict(headers, **{"If-Match": "0"}), token=agent.token)[0] == 412
    status, h, _ = agent.client.request("PUT", path, b"v2", dict(headers, **{"If-Match": "1"}), token=agent.token)
    assert status == 200 and h["etag"] == "2"
    name = "a" * 32 + "/logs/a.txt"
    assert [(f.name, f.size, f.source) for f in mockhub.files(agent.id)] == [(name, 2, "iotfile")] * 2
    assert [e["_source"] for e in mockhub.events(agent.id)] == ["eventmanagement"]


def test_node_chunked_iot_file_upload(mockhub, agent):
    # N's multi-part mode: ?upload=start with an empty body, ?part=n up to 3 at a time (here on three
    # connections at once, arriving in any order), the last chunk on ?upload=complete; ?upload=abort on error
    import threading
    import time

    from fixtures_mockhub import HubClient
    headers = {"Content-Type": "application/octet-stream", "description": "d", "type": "application/zip",
               "timestamp": "2026-11-25T06:00:00.000Z"}
    path = "/api/iotfile/v3/files/%s/big/a.zip" % agent.id
    chunks = [bytes([n]) * (1000 + n) for n in range(1, 5)]

    def put(client, query, body):
        return client.request("PUT", path + query, body, headers, token=agent.token)

    assert put(agent.client, "?upload=start", b"")[0] in (200, 201)
    clients = [HubClient(mockhub) for _ in range(3)]
    results = {}
    threads = [threading.Thread(target=lambda n, c: results.__setitem__(n, put(c, "?part=%d" % n, chunks[n - 1])),
                                args=(n, clients[3 - n])) for n in (3, 1, 2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert sorted(results) == [1, 2, 3] and all(200 <= r[0] < 300 for r in results.values()), results
    assert mockhub.files(agent.id) == []  # nothing is a file before the upload completes
    status, h, _ = put(agent.client, "?upload=complete", chunks[3])
    assert status == 201 and h["etag"] == "1"
    f = mockhub.files(agent.id)[0]
    assert (f.name, f.size, f.file_type, f.source) == (agent.id + "/big/a.zip", sum(map(len, chunks)),
                                                       "application/zip", "iotfile")
    with open(f.path, "rb") as fh:
        assert fh.read() == b"".join(chunks)
    # an aborted upload leaves the file as it was; a part without a started upload is refused
    assert put(agent.client, "?upload=start", b"")[0] in (200, 201)
    assert 200 <= put(agent.client, "?part=1", b"x" * 10)[0] < 300
    assert 200 <= put(agent.client, "?upload=abort", b"")[0] < 300
    assert put(agent.client, "?part=2", b"y")[0] == 400
    assert len(mockhub.files(agent.id)) == 1
    for c in clients:
        c.close()


def test_mcl_data_lake_upload_through_a_signed_url(mockhub, agent):
    # M's data lake extension: generateUploadObjectUrls (201) names a signed URL per path; the object is
    # then PUT there with x-ms-blob-type: BlockBlob and no Authorization, streamed (here chunked)
    import http.client
    import urllib.parse

    from fixtures_mockhub import tls_context
    path = agent.id + "/logs/day-1.csv"
    status, doc = agent.client.json("POST", "/api/datalake/v3/generateUploadObjectUrls", {"paths": [{"path": path}]},
                                    token=agent.token)
    assert status == 201 and [u["path"] for u in doc["objectUrls"]] == [path], doc
    url = urllib.parse.urlsplit(doc["objectUrls"][0]["signedUrl"])
    assert (url.scheme, url.hostname, url.port) == ("https", "localhost", mockhub.port)
    content = b"t,v\n" + b"1,2\n" * 5000
    mockhub.max_body = 4096  # the exchange limit: an object in Blob storage may be bigger
    conn = http.client.HTTPSConnection("localhost", mockhub.port, context=tls_context(mockhub), timeout=30)
    conn.request("PUT", url.path + "?" + url.query, body=iter([content[:7000], content[7000:]]), encode_chunked=True,
                 headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    assert r.status in (200, 201) and r.read() == b""
    f = mockhub.files(agent.id)[-1]
    assert (f.name, f.size, f.source, f.sha256) == (path, len(content), "datalake", hashlib.sha256(content).hexdigest())
    # the signature binds the URL to its path: another path, or no signature, is refused
    for target in (url.path.replace("day-1", "day-2") + "?" + url.query, url.path):
        conn.request("PUT", target, body=b"x", headers={"x-ms-blob-type": "BlockBlob"})
        r = conn.getresponse()
        assert r.status == 403, (target, r.status, r.read())
        r.read()
    assert len(mockhub.files(agent.id)) == 1
    assert agent.client.json("POST", "/api/datalake/v3/generateUploadObjectUrls", {"paths": []},
                             token=agent.token)[0] == 400
    conn.close()


def test_unquoted_numeric_values_are_a_setting(mockhub, agent):
    # PROTOCOL.md Part B §5 (a warning sign: keep it configurable): N's types allow a numeric value, sent
    # unquoted. Dropped by default like every value that is not a JSON string; accepted when so set,
    # still judged against the point's type
    payload = json.dumps([{"timestamp": "2026-11-25T06:02:51.272Z", "values": [
        {"dataPointId": "temp", "value": 20.5, "qualityCode": "0"}, {"dataPointId": "hum", "value": 40,
                                                                     "qualityCode": "0"},
        {"dataPointId": "hum", "value": 40.5, "qualityCode": "0"}, {"dataPointId": "on", "value": True,
                                                                    "qualityCode": "0"}]}]).encode()
    body = exchange_body([(meta("standardTimeSeries", details={"configurationId": "cfg-1"}), "application/json",
                           payload)])
    assert agent.exchange(body, B)[0] == 200
    assert mockhub.timeseries(agent.id) == [] and len(mockhub.dropped(agent.id)) == 4
    mockhub.numeric_values = "accept"
    assert agent.exchange(body, B)[0] == 200
    assert mockhub.timeseries(agent.id) == [("2026-11-25T06:02:51.272Z", "temp", "20.5", "0"),
                                            ("2026-11-25T06:02:51.272Z", "hum", "40", "0")]
    assert [d["reason"] for d in mockhub.dropped(agent.id)[4:]] == ["value '40.5' is not an integer (INT)",
                                                                    "value must be a JSON string, got bool"]
