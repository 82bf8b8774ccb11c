# items.py on both runtimes: the data model (validation, canonical JSON, hash), readings checked and
# encoded into the exact records of shared/vectors, staging of readings from an iterator, item kinds.
import json

import dualtest
from mindconnect import clock, items
from mindconnect.errors import ConfigError

HOST_FIXTURES = ("vectors_dir",)

DESCRIPTION = {"configurationId": "cfg-1", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "temp", "name": "Temperature", "type": "DOUBLE", "unit": "C"},
    {"id": "hum", "name": "Humidity", "type": "INT", "unit": "%"},
    {"id": "on", "name": "Heater", "type": "BOOLEAN", "unit": ""},
    {"id": "note", "name": "Note", "type": "STRING", "unit": ""},
    {"id": "big", "name": "Counter", "type": "LONG", "unit": ""},
    {"id": "seen", "name": "Seen", "type": "TIMESTAMP", "unit": ""}]}]}


def test_data_model_canonical_and_hashed():
    m = items.DataModel(DESCRIPTION)
    assert m.body.startswith(b'{"configurationId":"cfg-1","dataSources":[{"name":"env","dataPoints":[{"id":"temp",'
                             b'"name":"Temperature","type":"DOUBLE","unit":"C"}')
    assert json.loads(m.body)["dataSources"][0]["dataPoints"][5]["type"] == "TIMESTAMP"
    assert items.DataModel(DESCRIPTION).hash == m.hash and len(m.hash) == 64
    changed = json.loads(json.dumps(DESCRIPTION))
    changed["dataSources"][0]["dataPoints"][0]["unit"] = "K"
    assert items.DataModel(changed).hash != m.hash


def test_data_model_refuses_bad_descriptions_with_the_place_named():
    bad_type = {"configurationId": "c", "dataSources": [{"name": "s", "dataPoints": [
        {"id": "p1", "name": "P", "type": "FLOAT", "unit": ""}]}]}
    e = dualtest.raises(ConfigError, items.DataModel, bad_type)
    assert "p1" in e.message and "DOUBLE" in e.message
    dup = {"configurationId": "c", "dataSources": [{"name": "s", "dataPoints": [
        {"id": "p1", "name": "P", "type": "INT", "unit": ""}, {"id": "p1", "name": "Q", "type": "INT", "unit": ""}]}]}
    assert "twice" in dualtest.raises(ConfigError, items.DataModel, dup).message
    assert "dataSources" in dualtest.raises(ConfigError, items.DataModel, {"configurationId": "c"}).message


def test_records_match_the_shared_vector():
    with open(dualtest.env("VECTORS_DIR") + "/exchange_timeseries_event.body", "rb") as f:
        body = f.read()
    enc = items.RecordEncoder(items.DataModel(DESCRIPTION))
    r1 = bytes(enc.encode(1795586571272, [("temp", 21.5), ("hum", 40)]))
    r2 = bytes(enc.encode(1795586631000, [("temp", 21.75, 0)]))
    assert b"[" + r1 + b"," + r2 + b"]" in body


def test_every_type_encodes_and_timestamps_match_clock():
    enc = items.RecordEncoder(items.DataModel(DESCRIPTION))
    rec = json.loads(bytes(enc.encode(0, [("on", True), ("note", 'say "hi"'), ("big", -(1 << 40)),
                                          ("seen", 1764050571272), ("hum", 7, 3)])))
    vals = [v["value"] for v in rec["values"]]
    assert vals == ["true", 'say "hi"', str(-(1 << 40)), "2025-11-25T06:02:51.272Z", "7"]
    assert rec["values"][4]["qualityCode"] == "3"
    for ms in (0, 951782400000, 1709164800001, 1764050571272, 4107542399999):
        out = json.loads(bytes(enc.encode(ms, [("hum", 1)])))
        assert out["timestamp"] == clock.iso8601(ms)


def test_invalid_readings_name_the_point():
    enc = items.RecordEncoder(items.DataModel(DESCRIPTION))
    cases = ((("nope", 1), "nope", "not in data model"), (("hum", 2.5), "hum", "integer"),
             (("hum", 1 << 31), "hum", "range"), (("on", 1), "on", "True or False"),
             (("temp", "21"), "temp", "number"), (("note", 5), "note", "text"),
             (("seen", "yesterday"), "seen", "timestamp"))
    for value, point, words in cases:
        e = dualtest.raises(items.InvalidReading, enc.encode, 1764050571272, [("temp", 1.0), value])
        assert e.point == point and words in e.message, (value, e.message)


def test_item_kinds_meta():
    d = dualtest.tmpdir()
    dualtest.write_bytes(d + "/f.bin", b"x" * 100)
    it = items.file_item(d + "/f.bin", 1764050571272, file_type="bin")
    assert it.meta == (b'{"type":"item","version":"1.0","payload":{"type":"file","version":"1.0","details":'
                       b'{"fileName":"f.bin","creationDate":"2025-11-25T06:02:51.272Z","fileType":"bin"}}}')
    ev = items.event_record(2, "temp above 30", "ThresholdViolation", 1795586640000,
                            "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    assert ev.startswith(b'{"id":"1b4e28ba-2fa1-41d2-883f-0016d3cca427","timestamp":"2026-11-25T06:04:00.000Z",'
                         b'"severity":2,"description":"temp above 30","type":"ThresholdViolation","version":"1.0"')
    dualtest.raises(ConfigError, items.event_record, 4, "x", "t", 0, "id")
    assert items.dsc_item(items.DataModel(DESCRIPTION)).meta.endswith(b'"dataSourceConfiguration","version":"1.0"}}')
    c = items.custom_item("myType", "2.0", "text/csv", "a,b\n1,2\n", details={"k": "v"})
    assert c.source.length == 8 and b'"details":{"k":"v"}' in c.meta
