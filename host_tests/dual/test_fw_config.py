# config.json / secrets.json: defaults, warnings, loading from a flash folder, and secrets that never
# show (both runtimes). The table of bad configs is in test_fw_config_errors.py.
import json

import dualtest
from firmware import config
from mindconnect.errors import ConfigError

KEY = {"content": {"baseUrl": "https://southgate.eu1.mindsphere.io", "iat": "eyJhbGciOi.secret-iat.x",
                   "clientCredentialProfile": ["SHARED_SECRET"], "clientId": "a1b2c3", "tenant": "plant"},
       "expiration": "2026-12-01T00:00:00.000Z"}


def minimal():
    return {"sensors": [{"type": "dht22", "pin": 4, "points": [{"id": "t1"}, {"id": "h1", "quantity": "humidity"}]}]}


def full():
    return {
        "wifi": {"ssid": "plant-iot"},
        "sensors": [
            {"type": "bme280", "name": "room", "i2c": {"sda": 21, "scl": 22}, "address": "0x77",
             "points": [{"id": "t", "name": "Temperature", "unit": "C"},
                        {"id": "p", "quantity": "pressure", "unit": "Pa"}]},
            {"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "points": [{"id": "t2"}]},
            {"type": "ds18b20", "pin": 13, "rom": "28ff4a1b93160302", "points": [{"id": "w1"}]},
            {"type": "ds18b20", "pin": 13, "rom": "28aa0c2e0b000057", "points": [{"id": "w2", "type": "INT"}]},
            {"type": "adc", "pin": 35, "scale": 2, "points": [{"id": "vbat", "unit": "V"}]},
        ],
        "sample_s": 30, "upload_s": 600, "mode": "deep-sleep",
        "rules": [{"point": "t", "above": 30, "hysteresis": 0.5, "severity": 1}],
        "mappings": [{"point": "t", "property_set": "Environment", "property": "temperature"}],
        "spool": {"max_bytes": 65536},
        "log_level": "debug",
    }


def test_defaults_of_a_minimal_config():
    c = config.validate(minimal())
    assert (c.sample_s, c.upload_s, c.mode, c.log_level, c.board) == (60, 300, "always-on", "info", "auto")
    assert c.spool == {"max_bytes": 262144, "watermark_bytes": 131072, "flush_every": 10, "flush_ms": 60000}
    assert c.ntp == {"host": "pool.ntp.org", "timeout_ms": 2000}
    assert c.wifi is None and c.gateway is None and c.onboarding_key is None
    assert (c.ca_file, c.safe_pin, c.watchdog_ms, c.rules, c.mappings) == ("ca.der", 0, 60000, [], [])
    s = c.sensors[0]
    assert (s["type"], s["name"], s["pin"]) == ("dht22", "dht22-0", 4)
    assert s["points"] == [{"id": "t1", "name": "t1", "type": "DOUBLE", "unit": "", "quantity": "temperature"},
                           {"id": "h1", "name": "h1", "type": "DOUBLE", "unit": "", "quantity": "humidity"}]
    assert [p["id"] for _, p in c.points()] == ["t1", "h1"]
    assert c.warnings == [] and c.wifi_password.reveal() == ""


def test_a_full_config():
    c = config.validate(full(), {"wifi_password": "hunter22", "onboarding_key": KEY})
    assert c.wifi == {"ssid": "plant-iot", "timeout_s": 20, "backoff_max_s": 300}
    bme = c.sensors[0]
    assert bme["address"] == 0x77 and bme["i2c"] == {"id": 0, "sda": 21, "scl": 22, "freq": 100000}
    assert c.sensors[1]["address"] == 0x76
    assert c.sensors[2]["rom"] == "28ff4a1b93160302" and c.sensors[3]["rom"] == "28aa0c2e0b000057"
    assert c.sensors[4]["atten_db"] == 11 and c.sensors[4]["samples"] == 4 and c.sensors[4]["cal"] is None
    assert c.rules == [{"point": "t", "above": 30, "below": None, "hysteresis": 0.5, "severity": 1,
                        "description": None}]
    assert c.mappings == [{"point": "t", "entity_id": None, "property_set": "Environment",
                           "property": "temperature", "keep": True}]
    assert c.spool["watermark_bytes"] == 32768
    assert c.gateway == "https://southgate.eu1.mindsphere.io"  # from the onboarding key
    assert c.onboarding_key.reveal()["content"]["clientId"] == "a1b2c3"
    assert c.wifi_password.reveal() == "hunter22"
    assert c.warnings == []


def test_warnings_for_strapping_pins_and_fast_deep_sleep():
    c = minimal()
    c["sensors"][0]["pin"] = 15
    c["mode"] = "deep-sleep"
    c["sample_s"] = 5
    c = config.validate(c)
    assert len(c.warnings) == 2
    assert c.warnings[0].startswith("sensors[0].pin: 15 is a strapping pin")
    assert c.warnings[1].startswith("sample_s: 5 s between deep sleeps")


def test_secrets_never_show_in_reprs():
    c = config.validate(full(), {"wifi_password": "hunter22", "onboarding_key": KEY})
    shown = repr(c) + str(c) + repr(c.wifi_password) + str(c.onboarding_key) + repr(c.__dict__)
    for secret in ("hunter22", "secret-iat", "a1b2c3"):
        assert secret not in shown, secret
    assert "<secret>" in repr(c.__dict__)


def _flash(files):
    d = dualtest.tmpdir()
    for name, text in files.items():
        dualtest.write_bytes(d + "/" + name, text.encode())
    return d


def test_load_from_flash_with_key_file():
    d = _flash({"config.json": json.dumps(full()), "ca.der": "0",
                "secrets.json": json.dumps({"wifi_password": "pw", "onboarding_key": "key.json"}),
                "key.json": json.dumps(KEY)})
    c = config.load(d)
    assert c.onboarding_key.reveal()["content"]["tenant"] == "plant"
    assert c.ca_file == d + "/ca.der" and c.sensors[0]["name"] == "room"


def test_load_errors_say_what_to_do():
    d = _flash({})
    e = dualtest.raises(ConfigError, config.load, d)
    assert str(e).startswith("config.json: not found; copy a config.json to the board")
    _flash({"config.json": '{"sensors": [{"type": '})
    e = dualtest.raises(ConfigError, config.load, d)
    assert str(e).startswith("config.json: not valid JSON; check quotes, commas and brackets")
    _flash({"config.json": json.dumps(minimal())})
    e = dualtest.raises(ConfigError, config.load, d)
    assert str(e).startswith("ca_file: ca.der not found in flash; copy the gateway's root CA there in DER form")
    _flash({"ca.der": "0", "secrets.json": json.dumps({"onboarding_key": "missing.json"})})
    e = dualtest.raises(ConfigError, config.load, d)
    assert str(e).startswith("secrets.json: onboarding_key: file missing.json not found in flash")
    _flash({"secrets.json": '{"wifi_password": "hunter22"'})
    e = dualtest.raises(ConfigError, config.load, d)
    assert str(e).startswith("secrets.json: not valid JSON") and "hunter22" not in str(e)


def test_rules_get_a_dead_band_by_default():
    # without one, a value hovering at the limit raised and cleared an event at every sample
    from test_fw_cfgbase import changed, minimal
    c = config.validate(changed(minimal, (("rules", [{"point": "t1", "above": 30}, {"point": "t1", "below": 0},
                                                     {"point": "t1", "below": 2, "hysteresis": 0}]),)))
    assert [r["hysteresis"] for r in c.rules] == [0.3, 0.1, 0]
