"""What provisioning puts on a board, prepared on the host before the board is touched.

Every check that can refuse an input runs here, so a refusal leaves the board's files as they were:
the onboarding key (shape, security profile, expiry), the CA certificate (PEM or DER, converted to
DER), config.json from a template plus flags (validated with firmware/config.py, as the board will),
and the device bundle (.mpy compiled with mpy-cross, or the sources with no_mpy).
"""

import base64
import json
import ssl
import time
from datetime import datetime, timezone
from pathlib import Path

from tools import build

ROOT = build.ROOT
BUILD_DIR = ROOT / "build" / "provision-mpy"
# The bundle's own trees on the board: files there that the bundle does not have are removed (a stale
# x.py would shadow a new x.mpy, MicroPython imports .py first). Anything else on the flash is left alone.
OWNED_TREES = ("lib/mindconnect/", "firmware/")
# Device-tree files that are not for the board's flash: the freeze manifest is read by the firmware
# image build (it calls include()/freeze()), never imported on a board.
NOT_ON_BOARD = ("firmware/manifest.py",)
CONFIG_FILE = "config.json"
SECRETS_FILE = "secrets.json"
DEFAULT_CA_FILE = "ca.der"
ESP32_NO_PULL_UP = range(34, 40)  # input-only pins: no internal pull-up for the safe pin's idle level
NEW_KEY_HINT = "get a new onboarding key from Insights Hub > Agent > Onboard"

# Used when no --config template is given: one simulated sensor, which works on any board.
DEFAULT_TEMPLATE = {
    "board": "auto",
    "sensors": [{"type": "sim", "name": "demo", "points": [{"id": "t1", "name": "Temperature", "unit": "C"}]}],
    "sample_s": 60,
    "upload_s": 300,
}


class ProvisionError(Exception):
    """A refusal with a message that says what to do; it never contains a secret."""


# -- the device bundle ----------------------------------------------------------------------------

def bundle_files(no_mpy=False, root=ROOT, out_dir=BUILD_DIR):
    """{board path: host Path} of the device bundle: lib/ and firmware/ as .mpy (or .py), boot.py and
    main.py as source at the root of the flash, as tools/build.py lays them out."""
    pairs = build.device_sources(root)
    files = {}
    to_compile = []
    for src, rel in pairs:
        if rel.as_posix() in NOT_ON_BOARD:
            continue
        if rel.parts[0] in build.DEVICE_TREES and not no_mpy:
            to_compile.append((src, rel))
            files[rel.with_suffix(".mpy").as_posix()] = Path(out_dir) / rel.with_suffix(".mpy")
        else:
            files[rel.as_posix()] = src
    errors = build.compile_files(to_compile, out_dir) if to_compile else []
    if errors:
        raise ProvisionError("mpy-cross failed, fix the source first:\n  " + "\n  ".join(errors))
    return files


def mpy_version_of(files):
    """(version, sub-version) of the .mpy files in the bundle, or None when it has none."""
    for board_path, host_path in files.items():
        if board_path.endswith(".mpy"):
            head = Path(host_path).read_bytes()[:4]
            if head[:1] != b"M":
                raise ProvisionError("%s is not an .mpy file: delete %s and try again" % (host_path, BUILD_DIR))
            return head[1], head[2] & 3
    return None


# -- onboarding key -------------------------------------------------------------------------------

def _b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _iso_to_epoch(text):
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except (TypeError, ValueError):
        return None


def read_onboarding_key(path, now=None):
    """The onboarding key file's JSON object, checked; ProvisionError (naming the file, never the key)
    when it is missing, malformed, of a security profile the agent lacks, or expired."""
    now = int(time.time()) if now is None else now
    where = "onboarding key %s" % path
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is no JSON
    except FileNotFoundError:
        raise ProvisionError("%s: file not found; save the key from Insights Hub > Agent > Onboard there"
                             % where) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ProvisionError("%s: cannot read it (%s)" % (where, e.__class__.__name__)) from None
    try:
        key = json.loads(text)
    except ValueError:
        raise ProvisionError("%s: not valid JSON; copy the whole key again from Insights Hub > Agent > Onboard"
                             % where) from None
    content = key.get("content") if isinstance(key, dict) else None
    if not isinstance(content, dict):
        raise ProvisionError("%s: has no 'content'; copy the whole key again from Insights Hub > Agent > Onboard"
                             % where)
    for field in ("baseUrl", "iat", "clientId", "tenant"):
        if not isinstance(content.get(field), str) or not content[field]:
            raise ProvisionError("%s: content.%s is missing; copy the whole key again from Insights Hub"
                                 % (where, field))
    if not content["baseUrl"].startswith("https://"):
        raise ProvisionError("%s: content.baseUrl must start with https://; copy the key again" % where)
    if key_profile(key) is None:
        raise ProvisionError("%s: the agent's security profile is neither SHARED_SECRET nor RSA_3072; create "
                             "the agent in Insights Hub with one of them" % where)
    expires = _iso_to_epoch(key.get("expiration"))
    try:
        jwt_exp = _b64url_json(content["iat"].split(".")[1]).get("exp")
    except (IndexError, ValueError, AttributeError):
        jwt_exp = None  # the IAT is opaque to clients; its exp is only used when readable
    if isinstance(jwt_exp, int) and (expires is None or jwt_exp < expires):
        expires = jwt_exp
    if expires is not None and expires <= now:
        when = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        raise ProvisionError("%s: expired on %s; %s" % (where, when, NEW_KEY_HINT))
    return key


def key_profile(key):
    """"SHARED_SECRET", "RSA_3072" (as the board's agent chooses) or None for an onboarding key object."""
    profiles = key["content"].get("clientCredentialProfile") or ["SHARED_SECRET"]
    for p in ("SHARED_SECRET", "RSA_3072"):
        if p in profiles:
            return p
    return None


def rsa_key_files(store_dir, on_board, with_next):
    """{board path: key file bytes} of the RSA keys to make for an RSA_3072 agent: the key it registers
    at onboarding (store_dir/rsa_key) and, with with_next, one for its next rotation (rsa_next), each
    only when the board does not have one yet (on_board: paths it has), so an onboarded board keeps its
    registered key. Generated here with the cryptography package; the bytes hold the private key and
    go only to the board, never to the screen or to a file on this computer. Returns (files, kids)."""
    from tools import rsakey
    files, kids = {}, {}
    for name, wanted in (("rsa_key", True), ("rsa_next", with_next)):
        path = store_dir + "/" + name
        if wanted and path not in on_board:
            key = rsakey.generate()
            files[path] = rsakey.device_form(key)
            kids[path] = rsakey.kid(key)
    return files, kids


# -- CA certificate -------------------------------------------------------------------------------

MAX_CA_CERTS = 4  # each is parsed and kept in the board's RAM by its TLS context


def ca_der(path):
    """The CA certificate(s) at path as DER bytes (the board's TLS refuses PEM): every certificate of a
    PEM bundle (e.g. the gateway's root and the one announced to replace it), concatenated."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        raise ProvisionError("CA certificate %s: file not found; give the gateway's root CA (PEM or DER)"
                             % path) from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        certs = []
        start = data.find(b"-----BEGIN CERTIFICATE-----")
        while start >= 0:
            end = data.find(b"-----END CERTIFICATE-----", start)
            if end < 0:
                raise ProvisionError("CA certificate %s: PEM without an END line; download it again" % path)
            try:
                certs.append(ssl.PEM_cert_to_DER_cert(data[start:end + 25].decode("ascii")))
            except ValueError:
                raise ProvisionError("CA certificate %s: broken PEM; download it again" % path) from None
            start = data.find(b"-----BEGIN CERTIFICATE-----", end)
    elif data[:1] == b"\x30":  # a DER certificate is an ASN.1 SEQUENCE; several may follow one another
        certs = _der_split(data)
        if certs is None:
            raise ProvisionError("CA certificate %s: not a readable X.509 certificate (cut short?); download "
                                 "it again" % path)
    else:
        raise ProvisionError("CA certificate %s: neither PEM nor DER; give the gateway's root CA certificate"
                             % path)
    if len(certs) > MAX_CA_CERTS:
        raise ProvisionError("CA certificate %s: %d certificates, at most %d: give the gateway's root CA "
                             "(and its announced successor), not a whole trust store"
                             % (path, len(certs), MAX_CA_CERTS))
    for der in certs:
        _check_ca(der, path)
    return b"".join(certs)


def _der_split(data):
    """The DER elements (ASN.1 SEQUENCEs) data holds one after the other, or None if it is not that."""
    out = []
    i = 0
    while i < len(data):
        if data[i] != 0x30 or i + 2 > len(data):
            return None
        n = data[i + 1]
        head = 2
        if n & 0x80:
            head += n & 0x7F
            n = int.from_bytes(data[i + 2:i + head], "big")
        if head > 6 or i + head + n > len(data):
            return None
        out.append(data[i:i + head + n])
        i += head + n
    return out


def _check_ca(der, path):
    """Refuse what the board's TLS could never use as a trust anchor: a file that is no X.509
    certificate (a key, a damaged download) or a server's own certificate instead of the CA."""
    from cryptography import x509
    try:
        cert = x509.load_der_x509_certificate(der)
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return  # an old (v1) root has no extensions
    except ValueError:
        raise ProvisionError("CA certificate %s: not a readable X.509 certificate; download it again" % path
                             ) from None
    if not constraints.ca:
        raise ProvisionError("CA certificate %s: %s is a server's own certificate, not a CA: give the root CA "
                             "that issued it (e.g. DigiCert Global Root G2 for Insights Hub)"
                             % (path, cert.subject.rfc4514_string()))


# -- config.json and secrets.json -----------------------------------------------------------------

def _set_path(cfg, dotted, value):
    node = cfg
    parts = dotted.split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def compose_config(template=None, gateway=None, wifi_ssid=None, ca_file=DEFAULT_CA_FILE, overrides=(), base=None):
    """config.json as a dict: the template (a path; or None for base, the board's config.json, or when
    the board has none DEFAULT_TEMPLATE), then the flags.

    overrides are "dotted.key=JSON value" strings (a value that is not JSON is taken as a string).
    """
    if template is None:
        cfg = json.loads(json.dumps(DEFAULT_TEMPLATE if base is None else base))
    else:
        try:
            cfg = json.loads(Path(template).read_text(encoding="utf-8-sig"))
        except OSError:
            raise ProvisionError("config template %s: file not found" % template) from None
        except ValueError:
            raise ProvisionError("config template %s: not valid JSON; check quotes, commas and brackets"
                                 % template) from None
        if not isinstance(cfg, dict):
            raise ProvisionError("config template %s: must be a JSON object {...}" % template)
    if gateway:
        cfg["gateway"] = gateway
    if wifi_ssid:
        _set_path(cfg, "wifi.ssid", wifi_ssid)
    cfg["ca_file"] = ca_file
    for item in overrides:
        if "=" not in item:
            raise ProvisionError("--set %r: write it as key=value, e.g. --set sample_s=30" % item)
        k, v = item.split("=", 1)
        try:
            value = json.loads(v)
        except ValueError:
            value = v
        _set_path(cfg, k.strip(), value)
    return cfg


def compose_secrets(wifi_password=None, onboarding_key=None):
    secrets = {}
    if wifi_password:
        secrets["wifi_password"] = wifi_password
    if onboarding_key is not None:
        secrets["onboarding_key"] = onboarding_key
    return secrets


def validate_config(cfg, secrets):
    """Check config and secrets with the firmware's own rules; return its warnings."""
    from firmware import app as fwapp
    from firmware import config as fwconfig  # host import of a device module (pure Python)
    from firmware import datamodel
    from mindconnect import items
    from mindconnect.errors import ConfigError
    try:
        conf = fwconfig.validate(cfg, secrets)
        own = [t[0] for t in datamodel.TELEMETRY]
        for s in conf.sensors:
            for p in s["points"]:
                if p["id"] in own:
                    raise ConfigError("data point %s (sensor %s) is one of the node's own telemetry points (%s): "
                                      "give it another id" % (p["id"], s["name"], ", ".join(own)))
        model = datamodel.model(conf)  # what the board builds at every start: a refusal there stops the node
        # the readings spool takes segments that hold the largest reading, and needs two of them
        need = 2 * (len(items.RecordEncoder(model).buf) + fwapp.RECORD_OVERHEAD)
        if conf.spool["max_bytes"] < need:
            raise ConfigError("spool.max_bytes %d is too small for the readings of this data model (%d data "
                              "points, the node's own included): "
                              "make it %d or more" % (conf.spool["max_bytes"], len(model.points), need))
    except ConfigError as e:
        raise ProvisionError("config.json would be refused by the board: %s" % e) from None
    warnings = list(conf.warnings)
    if conf.board != "sim" and conf.safe_pin in ESP32_NO_PULL_UP:
        warnings.append("safe_pin GPIO %d has no internal pull-up on the ESP32: without a resistor to 3.3 V it "
                        "floats, and a low level at a boot holds the node in safe mode until someone comes; "
                        "use GPIO 0 (the default) or another pin with a pull-up" % conf.safe_pin)
    return warnings


def json_bytes(doc):
    """The exact bytes written for a JSON file (stable, so an unchanged file hashes the same; keys sorted:
    a file read back from the board comes in MicroPython's dict order, not the order it was written in)."""
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
