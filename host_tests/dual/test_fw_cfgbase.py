# Shared by the config error tables (no tests here): base configs and a way to change one field.


def minimal():
    return {"sensors": [{"type": "dht22", "pin": 4, "points": [{"id": "t1"}, {"id": "h1", "quantity": "humidity"}]}]}


def full():
    return {"sensors": [
        {"type": "bme280", "i2c": {"sda": 21, "scl": 22}, "points": [{"id": "t"}]},
        {"type": "dht22", "pin": 4, "points": [{"id": "h", "quantity": "humidity"}]},
        {"type": "ds18b20", "pin": 13, "rom": "28ff4a1b93160302", "points": [{"id": "w1"}]},
        {"type": "ds18b20", "pin": 14, "points": [{"id": "w2"}]},
        {"type": "adc", "pin": 35, "points": [{"id": "vbat"}]},
    ]}


def changed(base, changes):
    """base() with each (path, value) applied; a path is keys and list indexes joined by dots."""
    c = base()
    for path, value in changes:
        keys = path.split(".")
        obj = c
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        if isinstance(obj, list):
            obj[int(keys[-1])] = value
        else:
            obj[keys[-1]] = value
    return c


def key(**content):
    c = {"baseUrl": "https://southgate.eu1.mindsphere.io", "iat": "eyJ-secret", "clientId": "c", "tenant": "t"}
    for k in content:
        if content[k] is None:
            del c[k]
        else:
            c[k] = content[k]
    return {"content": c}
