# jsonw: compact JSON with a fixed key order, identical bytes on both runtimes.
import json

import dualtest
from mindconnect import jsonw


def test_compact_and_ordered():
    v = jsonw.Obj(("z", 1), ("a", [True, False, None, -3, "x"]), ("m", jsonw.Obj(("k", "v"))))
    assert jsonw.dumps(v) == '{"z":1,"a":[true,false,null,-3,"x"],"m":{"k":"v"}}'
    assert jsonw.dumpb(v) == jsonw.dumps(v).encode()
    assert v.get("a")[0] is True and v.get("missing", 7) == 7


def test_strings_escape_and_keep_utf8():
    s = 'quote" back\\ nl\n tab\t ctl\x01 é ü'
    text = jsonw.dumps([s])
    assert json.loads(text) == [s]
    assert "é" in text and "\\n" in text and "\\u0001" in text


def test_floats_and_refusals():
    assert json.loads(jsonw.dumps([21.5, -0.25, 1e22])) == [21.5, -0.25, 1e22]
    dualtest.raises(ValueError, jsonw.dumps, float("nan"))
    dualtest.raises(ValueError, jsonw.dumps, float("inf"))
    dualtest.raises(TypeError, jsonw.dumps, object())
