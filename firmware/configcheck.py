"""Reading and validation of config.json and secrets.json: defaults, ESP32 pin rules, clear errors.

Used once at boot through firmware.config (load, validate), which unloads this module again afterwards:
its code is large for a heap of about 100 KB and is not needed once the settings are known. Every error
names the field and the fix; secrets are wrapped in Secret before they leave, and never echoed.
"""

import json

from firmware.config import Config, Secret
from firmware.sensors import QUANTITIES
from mindconnect.errors import ConfigError

MODES = ("always-on", "deep-sleep")
LOG_LEVELS = ("debug", "info", "warning", "error")
POINT_TYPES = ("INT", "LONG", "DOUBLE", "BOOLEAN", "STRING")
NUMERIC_TYPES = ("INT", "LONG", "DOUBLE")
ATTENUATIONS = (0, 2.5, 6, 11)

# ESP32 (classic) GPIO rules
FLASH_PINS = (6, 7, 8, 9, 10, 11)
UART0_PINS = (1, 3)
INPUT_ONLY = (34, 35, 36, 37, 38, 39)
STRAPPING = (0, 2, 5, 12, 15)
ADC1_PINS = (32, 33, 34, 35, 36, 37, 38, 39)
GOOD_IO = "4, 13, 14, 16-19, 21-23, 25-27, 32, 33"
GOOD_ADC = "32-39"
# minimum time between two reads of a sensor kind, in seconds
MIN_PERIOD_S = {"dht11": 1, "dht22": 2}

TOP_KEYS = ("board", "gateway", "ca_file", "wifi", "ntp", "sensors", "sample_s", "upload_s", "mode", "rules",
            "mappings", "spool", "log_level", "safe_pin", "watchdog_ms")
SENSOR_KEYS = {
    "internal_temp": ("offset_c",),
    "adc": ("pin", "atten_db", "scale", "offset_v", "samples", "cal"),
    "dht11": ("pin",),
    "dht22": ("pin",),
    "bme280": ("i2c", "address"),
    "ds18b20": ("pin", "rom"),
    "sim": ("seed",),
}
COMMON_SENSOR_KEYS = ("type", "name", "points")
POINT_KEYS = ("id", "name", "type", "unit", "quantity")
RULE_KEYS = ("point", "above", "below", "hysteresis", "severity", "description")
MAPPING_KEYS = ("point", "entity_id", "property_set", "property", "keep")
SPOOL_KEYS = ("max_bytes", "flush_every", "flush_ms", "watermark_bytes")
WIFI_KEYS = ("ssid", "timeout_s", "backoff_max_s")
NTP_KEYS = ("host", "timeout_ms")
I2C_KEYS = ("id", "sda", "scl", "freq")
SECRET_KEYS = ("wifi_password", "onboarding_key")

_REQUIRED = object()


def _fail(path, message):
    raise ConfigError("%s: %s" % (path, message))


def _known(obj, keys, path):
    """Refuse keys that are not settings (a typo would otherwise be silently ignored)."""
    for k in obj:
        if k not in keys:
            best = None
            for cand in keys:
                n = 0
                while n < len(k) and n < len(cand) and k[n] == cand[n]:
                    n += 1
                if n >= 3 and (best is None or n > best[0]):
                    best = (n, cand)
            hint = "did you mean %s?" % best[1] if best else "remove it"
            _fail(_join(path, k), "unknown setting; %s (settings: %s)" % (hint, ", ".join(keys)))


def _join(path, key):
    return key if not path else path + "." + key


def _obj(v, path, default=None):
    if v is None:
        return {} if default is None else default
    if not isinstance(v, dict):
        _fail(path, "must be a JSON object {...}")
    return v


def _list(v, path):
    if v is None:
        return []
    if not isinstance(v, list):
        _fail(path, "must be a JSON list [...]")
    return v


def _get(obj, key, path, default):
    v = obj.get(key)
    if v is None:
        if default is _REQUIRED:
            _fail(_join(path, key), "missing; it is required")
        return default
    return v


def _int(obj, key, path, default=_REQUIRED, lo=None, hi=None, fix=None):
    v = _get(obj, key, path, default)
    p = _join(path, key)
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, int):
        _fail(p, "%r is not a whole number; write it without quotes or decimals" % (v,))
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = ">= %d" % lo if hi is None else "%d..%d" % (lo, hi)
        _fail(p, "%d is out of range; use %s" % (v, fix or rng))
    return v


def _num(obj, key, path, default=_REQUIRED, lo=None):
    v = _get(obj, key, path, default)
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        _fail(_join(path, key), "%r is not a number; write it without quotes" % (v,))
    if lo is not None and v < lo:
        _fail(_join(path, key), "%s is negative; use a value >= %s" % (v, lo))
    return v


def _str(obj, key, path, default=_REQUIRED, max_len=None, choices=None):
    v = _get(obj, key, path, default)
    if v is None:
        return v
    p = _join(path, key)
    if not isinstance(v, str):
        _fail(p, "%r is not a string; put it in double quotes" % (v,))
    if choices is not None and v not in choices:
        _fail(p, "%r is not allowed; use one of %s" % (v, ", ".join(choices)))
    if max_len is not None and (not v or len(v) > max_len):
        _fail(p, "%r must have 1..%d characters" % (v, max_len))
    return v


class _Pins:
    """ESP32 pin checks, and which pin is used for what (1-Wire and I2C pins may be shared by sensors)."""

    def __init__(self, warnings):
        self.used = {}
        self.warnings = warnings

    def check(self, n, path, role, output=True):
        if isinstance(n, bool) or not isinstance(n, int):
            _fail(path, "%r is not a GPIO number; write it without quotes" % (n,))
        if not (0 <= n <= 19 or 21 <= n <= 23 or 25 <= n <= 27 or 32 <= n <= 39):
            _fail(path, "%d is not a GPIO of the ESP32; use one of %s" % (n, GOOD_IO))
        if n in FLASH_PINS:
            _fail(path, "%d is wired to the SPI flash on ESP32 modules; use one of %s" % (n, GOOD_IO))
        if n in UART0_PINS:
            _fail(path, "%d is the USB serial port (UART0) used by the REPL; use one of %s" % (n, GOOD_IO))
        if output and n in INPUT_ONLY:
            _fail(path, "%d is input-only on ESP32 and this sensor must drive its line; use one of %s"
                  % (n, GOOD_IO))
        if role is None:  # safe_pin: read at boot, a sensor's level there could hold the board in safe mode
            other = self.used.get(n)
            if other is not None:
                _fail(path, "GPIO %d is already used by %s; give safe_pin a pin of its own (a button to GND), "
                      "or null for none" % (n, other[1]))
            return n
        if n in STRAPPING:
            self.warnings.append("%s: %d is a strapping pin; a sensor holding it at reset can stop the board "
                                 "from booting; prefer one of %s" % (path, n, GOOD_IO))
        other = self.used.get(n)
        if other is not None and (other[0] != role or role not in ("onewire", "sda", "scl")):
            _fail(path, "GPIO %d is already used by %s; give each sensor its own pin (only 1-Wire and I2C "
                  "sensors may share a bus)" % (n, other[1]))
        if other is None:
            self.used[n] = (role, path)
        return n


def _i2c(v, path, pins):
    bus = _obj(v, path)
    _known(bus, I2C_KEYS, path)
    sda, scl = _int(bus, "sda", path, 21), _int(bus, "scl", path, 22)
    if sda == scl:
        _fail(path, "sda and scl are the same pin; I2C needs two pins, e.g. sda 21 and scl 22")
    return {
        "id": _int(bus, "id", path, 0, 0, 1),
        "sda": pins.check(sda, _join(path, "sda"), "sda"),
        "scl": pins.check(scl, _join(path, "scl"), "scl"),
        "freq": _int(bus, "freq", path, 100000, 10000, 1000000, "10000..1000000 Hz (100000 is safe)"),
    }


def _address(v, path):
    if isinstance(v, str):
        try:
            v = int(v, 16) if v[:2] in ("0x", "0X") else int(v)
        except ValueError:
            v = None
    if v not in (0x76, 0x77):
        _fail(path, "must be 0x76 (SDO to GND) or 0x77 (SDO to VCC), as a number (118, 119) or a string")
    return v


def _sensor_settings(s, kind, path, pins):
    """The kind-specific settings of one sensor, with defaults."""
    out = {}
    if kind in ("dht11", "dht22", "ds18b20"):
        role = "onewire" if kind == "ds18b20" else kind
        out["pin"] = pins.check(_int(s, "pin", path), _join(path, "pin"), role)
    if kind == "ds18b20":
        rom = _str(s, "rom", path, None)
        if rom is not None:
            ok = len(rom) == 16
            for c in rom:
                ok = ok and c in "0123456789abcdefABCDEF"
            if not ok:
                _fail(_join(path, "rom"), "must be the 8-byte ROM code as 16 hex digits, e.g. 28ff4a1b93160302 "
                      "(onewire scan() shows it), or left out when the sensor is alone on its pin")
        out["rom"] = rom
    elif kind == "adc":
        p = _int(s, "pin", path)
        pins.check(p, _join(path, "pin"), "adc", output=False)
        if p not in ADC1_PINS:
            _fail(_join(path, "pin"), "%d is not an ADC1 pin (ADC2 cannot be read while Wi-Fi is on); use one "
                  "of %s" % (p, GOOD_ADC))
        out["pin"] = p
        atten = _num(s, "atten_db", path, 11)
        if atten not in ATTENUATIONS:
            _fail(_join(path, "atten_db"), "%s is not an attenuation of the ESP32 ADC; use 0, 2.5, 6 or 11 "
                  "(11 reads up to about 3.6 V)" % (atten,))
        out["atten_db"] = atten
        out["scale"] = _num(s, "scale", path, 1)
        out["offset_v"] = _num(s, "offset_v", path, 0)
        out["samples"] = _int(s, "samples", path, 4, 1, 64)
        cal = s.get("cal")
        if cal is not None:
            good = isinstance(cal, list) and len(cal) == 2
            for pair in cal if good else ():
                good = good and isinstance(pair, list) and len(pair) == 2
                for x in pair if good else ():
                    good = good and isinstance(x, int) and not isinstance(x, bool)
            if not good or cal[0][0] == cal[1][0]:
                _fail(_join(path, "cal"), "must be two measured points [[raw, mV], [raw, mV]] with different "
                      "raw counts, e.g. [[400, 350], [3700, 2950]]")
        out["cal"] = cal
    elif kind == "bme280":
        out["i2c"] = _i2c(s.get("i2c"), _join(path, "i2c"), pins)
        out["address"] = _address(s.get("address", 0x76), _join(path, "address"))
    elif kind == "internal_temp":
        out["offset_c"] = _num(s, "offset_c", path, 0)
    elif kind == "sim":
        out["seed"] = _int(s, "seed", path, 0)
    return out


def _points(s, kind, path, ids):
    pts = _list(s.get("points"), _join(path, "points"))
    if not pts:
        _fail(_join(path, "points"), "no data points; add at least one, e.g. [{\"id\": \"t1\", \"name\": "
              "\"Temperature\", \"type\": \"DOUBLE\", \"unit\": \"C\"}]")
    quantities = QUANTITIES[kind]
    out = []
    for j, p in enumerate(pts):
        pp = "%s.points[%d]" % (path, j)
        p = _obj(p, pp)
        _known(p, POINT_KEYS, pp)
        pid = _str(p, "id", pp, max_len=36)
        if pid in ids:
            _fail(_join(pp, "id"), "%r is used twice; data point ids must be unique (the other is %s)"
                  % (pid, ids[pid]))
        ids[pid] = pp
        ptype = _str(p, "type", pp, "DOUBLE", choices=POINT_TYPES)
        q = _str(p, "quantity", pp, quantities[0])
        if q not in quantities:
            _fail(_join(pp, "quantity"), "a %s measures %s, not %r" % (kind, " and ".join(quantities), q))
        if ptype not in NUMERIC_TYPES:
            _fail(_join(pp, "type"), "%s cannot hold a %s reading; use DOUBLE (or INT/LONG to round)" % (ptype, q))
        unit = _str(p, "unit", pp, "")
        if len(unit) > 32:
            _fail(_join(pp, "unit"), "at most 32 characters")
        out.append({"id": pid, "name": _str(p, "name", pp, pid, max_len=64), "type": ptype, "unit": unit,
                    "quantity": q})
    return out


def _sensors(v, pins, ids):
    out = []
    for i, s in enumerate(_list(v, "sensors")):
        path = "sensors[%d]" % i
        s = _obj(s, path)
        kind = _str(s, "type", path, choices=tuple(SENSOR_KEYS))
        _known(s, COMMON_SENSOR_KEYS + SENSOR_KEYS[kind], path)
        entry = _sensor_settings(s, kind, path, pins)
        entry["type"] = kind
        entry["name"] = _str(s, "name", path, "%s-%d" % (kind, i), max_len=64)
        entry["points"] = _points(s, kind, path, ids)
        out.append(entry)
    if not out:
        _fail("sensors", "no sensors configured; add at least one (type sim works on any board)")
    # DS18B20 on one pin need their ROM codes: one without is addressed with Skip ROM, and then every
    # sensor on the line answers at once (the bits collide: a CRC error at each read, for ever)
    first = {}  # pin: index of the first DS18B20 on it
    for i, s in enumerate(out):
        if s["type"] == "ds18b20":
            j = first.setdefault(s["pin"], i)
            if j != i and None in (out[j]["rom"], s["rom"]):
                k, m = (j, i) if out[j]["rom"] is None else (i, j)
                _fail("sensors[%d].rom" % k, "missing; sensors[%d] is a DS18B20 on GPIO %d too, and sensors sharing "
                      "a pin are told apart by their ROM codes: give each its 16 hex digits (docs/FIRMWARE.md, "
                      "DS18B20 ROM codes, shows how to read them)" % (m, s["pin"]))
    return out


def _rules(v, ids):
    out = []
    for i, r in enumerate(_list(v, "rules")):
        path = "rules[%d]" % i
        r = _obj(r, path)
        _known(r, RULE_KEYS, path)
        point = _str(r, "point", path)
        if point not in ids:
            _fail(_join(path, "point"), "%r is not a data point of any sensor; use one of %s"
                  % (point, ", ".join(sorted(ids))))
        above, below = _num(r, "above", path, None), _num(r, "below", path, None)
        if (above is None) == (below is None):
            _fail(path, "give exactly one of above or below, e.g. {\"point\": \"%s\", \"above\": 30}" % point)
        out.append({"point": point, "above": above, "below": below,
                    # default: 1% of the limit, at least 0.1: a value hovering at it gives one event
                    "hysteresis": _num(r, "hysteresis", path, max(abs(above if below is None else below) / 100,
                                                                  0.1), lo=0),
                    "severity": _int(r, "severity", path, 2, 1, 3, "1 (error), 2 (warning) or 3 (info)"),
                    "description": _str(r, "description", path, None, max_len=255)})
    return out


def _mappings(v, ids):
    out = []
    seen = {}
    for i, m in enumerate(_list(v, "mappings")):
        path = "mappings[%d]" % i
        m = _obj(m, path)
        _known(m, MAPPING_KEYS, path)
        point = _str(m, "point", path)
        if point not in ids:
            _fail(_join(path, "point"), "%r is not a data point of any sensor; use one of %s"
                  % (point, ", ".join(sorted(ids))))
        pset = _str(m, "property_set", path, max_len=64)
        if (point, pset) in seen:
            _fail(path, "%s is already mapped into property set %s by %s; a data point maps once per set"
                  % (point, pset, seen[(point, pset)]))
        seen[(point, pset)] = path
        keep = m.get("keep", True)
        if not isinstance(keep, bool):
            _fail(_join(path, "keep"), "must be true or false")
        out.append({"point": point, "entity_id": _str(m, "entity_id", path, None, max_len=64),
                    "property_set": pset, "property": _str(m, "property", path, max_len=64), "keep": keep})
    return out


def _spool(v):
    s = _obj(v, "spool")
    _known(s, SPOOL_KEYS, "spool")
    max_bytes = _int(s, "max_bytes", "spool", 262144, 4096, None, ">= 4096 bytes (the flash holds about 1.5 MB)")
    wm = _int(s, "watermark_bytes", "spool", max_bytes // 2, 1, max_bytes,
              "1..max_bytes (%d): upload early once the spool holds this much" % max_bytes)
    return {"max_bytes": max_bytes, "watermark_bytes": wm,
            "flush_every": _int(s, "flush_every", "spool", 10, 1),
            "flush_ms": _int(s, "flush_ms", "spool", 60000, 0)}


def _key_object(key, path):
    """Check the shape of an onboarding key without ever echoing it."""
    content = key.get("content") if isinstance(key, dict) else None
    if not isinstance(content, dict):
        _fail(path, "is not an onboarding key; paste the whole JSON from Insights Hub > Agent > Onboard")
    for k in ("baseUrl", "iat", "clientId", "tenant"):
        if not isinstance(content.get(k), str) or not content.get(k):
            _fail(path, "content.%s is missing; copy the key again from Insights Hub > Agent > Onboard" % k)
    if not content["baseUrl"].startswith("https://"):
        _fail(path, "content.baseUrl must start with https://; copy the key again from Insights Hub")
    profiles = content.get("clientCredentialProfile", ["SHARED_SECRET"])
    if not isinstance(profiles, list) or ("SHARED_SECRET" not in profiles and "RSA_3072" not in profiles):
        _fail(path, "the agent's security profile is neither SHARED_SECRET nor RSA_3072; create the agent in "
              "Insights Hub with one of them")



def _wifi(v):
    if v is None:
        return None
    wifi = _obj(v, "wifi")
    _known(wifi, WIFI_KEYS, "wifi")
    return {"ssid": _str(wifi, "ssid", "wifi", max_len=32),
            "timeout_s": _int(wifi, "timeout_s", "wifi", 20, 1, 600),
            # ticks_add on an ESP32 takes at most 2**29 ms (6.2 days): beyond, OverflowError in a backoff
            "backoff_max_s": _int(wifi, "backoff_max_s", "wifi", 300, 1, 536870)}


def _ntp(v):
    ntp = _obj(v, "ntp")
    _known(ntp, NTP_KEYS, "ntp")
    return {"host": _str(ntp, "host", "ntp", "pool.ntp.org"),
            "timeout_ms": _int(ntp, "timeout_ms", "ntp", 2000, 100, 10000)}


def _timing(cfg, sensors, warnings):
    """sample_s, upload_s and mode, checked against each other and against the sensors."""
    # at most 24.8 days: machine.deepsleep(ms) takes a machine word (OverflowError at every wake beyond)
    sample_s = _int(cfg, "sample_s", "", 60, 1, 2147483)
    upload_s = _int(cfg, "upload_s", "", max(300, sample_s), 1, None, "a positive number of seconds")
    if upload_s < sample_s:
        _fail("upload_s", "%d is shorter than sample_s (%d); upload at most as often as you sample"
              % (upload_s, sample_s))
    for i, s in enumerate(sensors):
        least = MIN_PERIOD_S.get(s["type"], 0)
        if sample_s < least:
            _fail("sample_s", "%d s is too fast for sensors[%d] (a %s needs %d s between reads); use "
                  "sample_s >= %d" % (sample_s, i, s["type"], least, least))
    mode = _str(cfg, "mode", "", "always-on", choices=MODES)
    if mode == "deep-sleep" and sample_s < 10:
        warnings.append("sample_s: %d s between deep sleeps costs more energy in boots than it saves; "
                        "use always-on or sample_s >= 10" % sample_s)
    return sample_s, upload_s, mode


def _secrets(secrets, read_file):
    """(wifi password, onboarding key or None), both as Secret."""
    _known(secrets, SECRET_KEYS, "secrets.json")
    pw = secrets.get("wifi_password", "")
    if not isinstance(pw, str):
        _fail("secrets.json: wifi_password", "must be a string in double quotes")
    key = secrets.get("onboarding_key")
    if isinstance(key, str) and key.lstrip()[:1] == "{":
        # the key's JSON pasted as a text in quotes: taken as it is, never echoed (it holds the IAT)
        try:
            key = json.loads(key)
        except ValueError:
            _fail("secrets.json: onboarding_key", "is a text that starts like the key's JSON but is not valid "
                  "JSON; paste the key object itself (no quotes around it) from Insights Hub > Agent > Onboard")
    elif isinstance(key, str) and (len(key) > 64 or " " in key):
        # not a file name (a pasted token?): not echoed either
        _fail("secrets.json: onboarding_key", "a text of %d characters is neither the key's JSON nor a file "
              "name on flash; paste the key object itself from Insights Hub > Agent > Onboard" % len(key))
    if isinstance(key, str):
        if read_file is None:
            _fail("secrets.json: onboarding_key", "a file name needs load(); pass the key's JSON instead")
        key = read_file(key, "secrets.json: onboarding_key")
    if key is not None:
        _key_object(key, "secrets.json: onboarding_key")
    return Secret(pw), None if key is None else Secret(key)


def check(cfg, secrets, read_file=None):
    """The settings of config.json and secrets.json with defaults filled in, as a dict; ConfigError if bad.

    read_file(name, field) loads an onboarding key given as a file name (None: only JSON objects).
    """
    cfg = _obj(cfg, "config.json")
    _known(cfg, TOP_KEYS, "")
    warnings = []
    pins = _Pins(warnings)
    gateway = _str(cfg, "gateway", "", None)
    if gateway is not None and not gateway.startswith("https://"):
        _fail("gateway", "%r must start with https:// (the agent always verifies TLS)" % gateway)
    ids = {}
    sensors = _sensors(cfg.get("sensors"), pins, ids)
    sample_s, upload_s, mode = _timing(cfg, sensors, warnings)
    safe_pin = cfg.get("safe_pin", 0)
    # The agent waits up to 30 s for the gateway with nothing moving to feed the watchdog (a TCP connect,
    # a TLS handshake read), after a name lookup: a shorter one reset the node in each upload while the
    # gateway was unreachable, and every reset counted toward safe mode.
    watchdog_ms = _int(cfg, "watchdog_ms", "", 60000, 0, 2147483647)
    if 0 < watchdog_ms < 45000:
        _fail("watchdog_ms", "%d ms is shorter than a wait for the gateway (30 s); use 0 (off) or >= 45000"
              % watchdog_ms)
    password, key = _secrets(_obj(secrets, "secrets.json"), read_file)
    if gateway is None and key is not None:
        gateway = key.reveal()["content"]["baseUrl"]
    return {
        "board": _str(cfg, "board", "", "auto", choices=("auto", "esp32", "sim")),
        "gateway": gateway,
        "ca_file": _str(cfg, "ca_file", "", "ca.der"),
        "wifi": _wifi(cfg.get("wifi")),
        "ntp": _ntp(cfg.get("ntp")),
        "sensors": sensors,
        "sample_s": sample_s,
        "upload_s": upload_s,
        "mode": mode,
        "rules": _rules(cfg.get("rules"), ids),
        "mappings": _mappings(cfg.get("mappings"), ids),
        "spool": _spool(cfg.get("spool")),
        "log_level": _str(cfg, "log_level", "", "info", choices=LOG_LEVELS),
        "safe_pin": None if safe_pin is None else pins.check(safe_pin, "safe_pin", None, output=False),
        "watchdog_ms": watchdog_ms,
        "warnings": warnings,
        "wifi_password": password,
        "onboarding_key": key,
    }


def validate(cfg, secrets):
    """config.validate: a Config from already-parsed dicts."""
    return Config(check(cfg, secrets))


def _read_json(path, field, required):
    try:
        f = open(path)
    except OSError:
        if required:
            raise ConfigError("%s: not found; copy a config.json to the board (tools/provision.py does it, "
                              "docs/FIRMWARE.md has an example)" % field) from None
        return None
    try:
        return json.load(f)
    except ValueError:
        raise ConfigError("%s: not valid JSON; check quotes, commas and brackets (no comments, no trailing "
                          "commas)" % field) from None
    finally:
        f.close()


def load(flash_dir):
    """config.load: the Config from flash_dir/config.json and flash_dir/secrets.json."""
    base = flash_dir.rstrip("/") + "/"
    cfg = _read_json(base + "config.json", "config.json", True)
    secrets = _read_json(base + "secrets.json", "secrets.json", False)

    def read_key(name, field):
        key = _read_json(base + name, "%s (%s)" % (field, name), False)
        if key is None:
            raise ConfigError("%s: file %s not found in flash; copy the onboarding key there or paste its "
                              "JSON into secrets.json" % (field, name))
        return key

    conf = Config(check(cfg, secrets, read_key))
    cfg = secrets = None
    try:
        open(base + conf.ca_file).close()
    except OSError:
        raise ConfigError("ca_file: %s not found in flash; copy the gateway's root CA there in DER form "
                          "(tools/provision.py does it)" % conf.ca_file) from None
    conf.ca_file = base + conf.ca_file
    return conf
