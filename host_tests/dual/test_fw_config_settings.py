# A table of bad settings in config.json (besides sensors) and in secrets.json, each with the message it
# must give: the field, then the fix (both runtimes).
import gc

from test_fw_cfgbase import changed, full, key, minimal

import dualtest
from firmware import config
from mindconnect.errors import ConfigError

# Above the default 64K: test_bad_secrets_never_echo_the_secret needs 64K (bisections over five tmp-path
# lengths, 2026-12-06), at or within 2 KB of the default, where any change to lib/ or to this module
# failed it. Not a device budget: that is test_agent_memory's and test_fw_app_memory's.
MPY_HEAPSIZE = "68K"

M, F = minimal, full
IO = "use one of 4, 13, 14, 16-19, 21-23, 25-27, 32, 33"

BAD = (
    (M, (("sample_sec", 5),), "sample_sec: unknown setting; did you mean sample_s?"),
    (M, (("sample_s", 0),), "sample_s: 0 is out of range; use 1..2147483"),
    (M, (("sample_s", 1),), "sample_s: 1 s is too fast for sensors[0] (a dht22 needs 2 s between reads); use "
     "sample_s >= 2"),
    (M, (("sample_s", 60), ("upload_s", 30)), "upload_s: 30 is shorter than sample_s (60); upload at most as often "
     "as you sample"),
    (M, (("mode", "sleepy"),), "mode: 'sleepy' is not allowed; use one of always-on, deep-sleep"),
    (M, (("log_level", "verbose"),), "log_level: 'verbose' is not allowed; use one of debug, info, warning, error"),
    (M, (("rules", [{"point": "zz", "above": 1}]),), "rules[0].point: 'zz' is not a data point of any sensor; use "
     "one of h1, t1"),
    (M, (("rules", [{"point": "t1", "above": 1, "below": 0}]),), "rules[0]: give exactly one of above or below"),
    (M, (("rules", [{"point": "t1", "above": 1, "description": "d" * 256}]),), "rules[0].description: '" + "d" * 256
     + "' must have 1..255 characters"),
    (M, (("rules", [{"point": "t1", "above": 1, "hysteresis": -1}]),), "rules[0].hysteresis: -1 is negative; use "
     "a value >= 0"),
    (M, (("rules", [{"point": "t1", "below": 1, "severity": 4}]),), "rules[0].severity: 4 is out of range; use 1 "
     "(error), 2 (warning) or 3 (info)"),
    (M, (("mappings", [{"point": "t1", "property": "t"}]),), "mappings[0].property_set: missing; it is required"),
    (M, (("mappings", [{"point": "t1", "property_set": "E", "property": "a"},
                       {"point": "t1", "property_set": "E", "property": "b"}]),),
     "mappings[1]: t1 is already mapped into property set E by mappings[0]"),
    (M, (("mappings", [{"point": "t1", "property_set": "E", "property": "a", "keep": "yes"}]),),
     "mappings[0].keep: must be true or false"),
    (M, (("spool", {"max_bytes": 100}),), "spool.max_bytes: 100 is out of range; use >= 4096 bytes"),
    (M, (("spool", {"max_bytes": 8192, "watermark_bytes": 9000}),), "spool.watermark_bytes: 9000 is out of range; "
     "use 1..max_bytes (8192)"),
    (M, (("spool", {"flush_every": 0}),), "spool.flush_every: 0 is out of range; use >= 1"),
    (M, (("spool", [1]),), "spool: must be a JSON object {...}"),
    (M, (("gateway", "http://example.com"),), "gateway: 'http://example.com' must start with https://"),
    (M, (("wifi", {"password": "x"}),), "wifi.password: unknown setting; remove it (settings: ssid, timeout_s, "
     "backoff_max_s)"),
    (M, (("wifi", {}),), "wifi.ssid: missing; it is required"),
    (M, (("safe_pin", 6),), "safe_pin: 6 is wired to the SPI flash"),
    (M, (("safe_pin", 4),), "safe_pin: GPIO 4 is already used by sensors[0].pin; give safe_pin a pin of its own"),
    (M, (("watchdog_ms", 500),), "watchdog_ms: 500 ms is shorter than a wait for the gateway"),
    (M, (("board", "pico"),), "board: 'pico' is not allowed; use one of auto, esp32, sim"),
)


def test_bad_configs_name_the_field_and_the_fix():
    for i in range(len(BAD)):
        base, changes, want = BAD[i]
        e = dualtest.raises(ConfigError, config.validate, changed(base, changes))
        assert str(e).startswith(want), "case %d: got %r, want %r" % (i, str(e), want)
        gc.collect()


BAD_SECRETS = (
    ({"wifi_password": 1234}, "secrets.json: wifi_password: must be a string in double quotes"),
    ({"onboarding_key": {"iat": "eyJ-secret"}}, "secrets.json: onboarding_key: is not an onboarding key; paste the "
                                                "whole JSON from Insights Hub > Agent > Onboard"),
    ({"onboarding_key": key(tenant=None)}, "secrets.json: onboarding_key: content.tenant is missing; copy the key "
                                           "again from Insights Hub > Agent > Onboard"),
    ({"onboarding_key": key(baseUrl="http://x")}, "secrets.json: onboarding_key: content.baseUrl must start with "
                                                  "https://"),
    ({"onboarding_key": key(clientCredentialProfile=["NATIVE_CA_CERTIFIED_X509"])},
     "secrets.json: onboarding_key: the agent's security profile is neither SHARED_SECRET nor RSA_3072"),
    ({"onboarding_key": "key.json"}, "secrets.json: onboarding_key: a file name needs load()"),
    # the key's JSON pasted inside quotes, cut short; and a token pasted instead of the key: never echoed
    ({"onboarding_key": '{"content": {"iat": "eyJ-secret'}, "secrets.json: onboarding_key: is a text that starts "
                                                            "like the key's JSON but is not valid JSON"),
    ({"onboarding_key": "eyJ-secret" + "x" * 90}, "secrets.json: onboarding_key: a text of 100 characters is "
                                                  "neither the key's JSON nor a file name"),
    ({"wifi_pass": "x"}, "secrets.json.wifi_pass: unknown setting; did you mean wifi_password?"),
)


def test_bad_secrets_never_echo_the_secret():
    assert config.validate(minimal(), {"onboarding_key": key()}).gateway == "https://southgate.eu1.mindsphere.io"
    import json  # the key's JSON pasted as a text in quotes is taken as the key
    c = config.validate(minimal(), {"onboarding_key": json.dumps(key())})
    assert c.onboarding_key.reveal()["content"]["tenant"] == key()["content"]["tenant"]
    for cfg_secrets, want in BAD_SECRETS:
        e = dualtest.raises(ConfigError, config.validate, minimal(), cfg_secrets)
        assert str(e).startswith(want), (str(e), want)
        assert "eyJ-secret" not in str(e) and "1234" not in str(e)
        gc.collect()
