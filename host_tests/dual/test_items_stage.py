# items.ReadingStage on both runtimes: readings from an iterator staged on flash in batches under a
# size limit, invalid ones set aside with the point named, an unacknowledged batch handed out again.
import json

import dualtest
from mindconnect import items

DESCRIPTION = {"configurationId": "cfg-1", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "hum", "name": "Humidity", "type": "INT", "unit": "%"}]}]}


def test_stage_batches_sets_invalid_aside_and_keeps_unacked():
    d = dualtest.tmpdir()
    model = items.DataModel(DESCRIPTION)
    aside = items.AsideLog(d + "/aside.log")
    readings = [(1764050571000 + i, [("hum", i)]) for i in range(50)]
    readings[7] = (1764050571007, [("hum", "seven")])
    stage = items.ReadingStage(d + "/stage", items.RecordEncoder(model), readings, aside)
    b = stage.batch(400)
    assert 0 < b.count < 49 and b.length <= 400
    out = []
    b.write_to(lambda x: out.append(bytes(x)))
    arr = json.loads(b"".join(out))
    assert len(arr) == b.count and len(b"".join(out)) == b.length
    # not acknowledged: a new stage on the same path (after a reboot) hands out the same batch first
    again = items.ReadingStage(d + "/stage", items.RecordEncoder(model), iter(()), aside).batch(400)
    assert again.count == b.count and again.length == b.length
    stage.ack(b)
    total = b.count
    while True:
        b = stage.batch(400)
        if not b.count:
            break
        total += b.count
        stage.ack(b)
    assert total == 49 and stage.invalid == 1 and not stage.pending()
    with open(d + "/aside.log", "rb") as f:
        line = f.read()
    assert b"data point hum" in line and b"seven" in line


def test_a_cut_before_the_count_and_an_oversized_reading_lose_nothing():
    d = dualtest.tmpdir()
    model = items.DataModel({"configurationId": "cfg-2", "dataSources": [{"name": "env", "dataPoints": [
        {"id": "hum", "name": "Humidity", "type": "INT", "unit": "%"},
        {"id": "note", "name": "Note", "type": "BIG_STRING", "unit": ""}]}]})
    aside = items.AsideLog(d + "/aside.log")
    readings = [(1764050571000 + i, [("hum", i)]) for i in range(6)]
    readings[2] = (1764050571002, [("note", "x" * 1500)])  # over the encoder's 1 KB: set aside, not raised
    stage = items.ReadingStage(d + "/stage", items.RecordEncoder(model), readings, aside)
    b = stage.batch(4000)
    assert b.count == 5 and stage.invalid == 1
    # the power went after the records were staged, before their count: they are handed out again
    dualtest.write_bytes(d + "/stage.n", b"0")
    again = items.ReadingStage(d + "/stage", items.RecordEncoder(model), iter(()), aside).batch(4000)
    assert again.count == 5 and again.length == b.length
    import os
    os.remove(d + "/stage.n")
    again = items.ReadingStage(d + "/stage", items.RecordEncoder(model), iter(()), aside)
    assert again.batch(4000).count == 5
    again.ack(b)
    assert not items.ReadingStage(d + "/stage", items.RecordEncoder(model), iter(()), aside).batch(4000).count
    with open(d + "/aside.log", "rb") as f:
        assert b"1024" in f.read()
