"""Provision MicroPython boards over USB serial: from a freshly flashed board to a node sending data.

One board:
    python -m tools.provision /dev/ttyUSB0 --key agent1-key.json --ca DigiCertGlobalRootG2.crt.pem \\
        --config my-config.json --wifi-ssid plant-floor --wifi-password-file wifi.txt --onboard
    python -m tools.provision /dev/ttyUSB0 --dry-run             # show what would change, write nothing
    python -m tools.provision /dev/ttyUSB0 --set sample_s=30     # change one setting, copy only that

A fleet, one board after another, with a summary table (CSV columns: port,name,key):
    python -m tools.provision --fleet boards.csv --ca root.pem --config my-config.json

What it does, in order: checks the inputs on this machine (onboarding key, CA, config.json with the
firmware's own rules, the .mpy bundle); reads the board's MicroPython version, .mpy version and free
flash; copies only the files whose SHA-256 differs (lib/ as /lib, firmware/ as /firmware, boot.py and
main.py at the root), each through a temp file and a rename; writes config.json, secrets.json (Wi-Fi
password, onboarding key) and the gateway CA as DER; with --onboard registers the agent on the board
and deletes the key from it; then runs a self-test on the board (imports, config, clock, TLS to the
gateway when reachable) and soft-resets it, so it starts main.py. Any refusal comes before the first
write, so the board's files stay as they were. Secrets are never printed. For an RSA_3072 agent it
makes the 3072-bit key on this computer (and with --rsa-next a second one for the next rotation) and
writes it to the board's credential store, unless the board has one already; only the key ids are
printed, and the private key is kept nowhere but on the board. The Wi-Fi password is read
from --wifi-password-file or the environment variable MINDCONNECT_WIFI_PASSWORD (a command line is
visible to other users).
Exit status: 0 when every board passed, 1 otherwise.
"""

import argparse
import csv
import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "lib"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from tools import provision_bundle as pb  # noqa: E402
from tools.provision_bundle import ProvisionError  # noqa: E402
from tools.provision_link import BoardLink  # noqa: E402

MIN_VERSION = (1, 23, 0)
RESERVE_BYTES = 16 * 1024  # credentials, tokens and the spool's bookkeeping besides spool.max_bytes
OWNED_TREES = tuple("/" + t.rstrip("/") for t in pb.OWNED_TREES)
# our packages as the firmware image may carry them, and where provisioning would copy them
IMAGE_TREES = {"mindconnect": "/lib/mindconnect/", "firmware": "/firmware/"}
WIFI_PASSWORD_ENV = "MINDCONNECT_WIFI_PASSWORD"
# Onboarding on the board: the agent's credential store folder, as firmware/app.py uses it.
STORE_DIR = "/agent"
TIME_FILE = STORE_DIR + "/time"  # firmware/app.py TIME_FILE in the store
STORE_SPOOL = "/spool"  # firmware/app.py SPOOL_DIR: readings in ts/, events in ev/
# Runs alone after a soft reset, so the agent has the whole heap (it reads the two JSON files itself
# rather than importing firmware.config, which would cost about 18 KB more).
ONBOARD_CODE = """
def _pv_onboard():
    import json
    from mindconnect.agent import Agent
    from mindconnect.transport import Transport
    with open("/config.json") as f:
        ca_file = json.load(f).get("ca_file", "ca.der")
    with open("/secrets.json") as f:
        key = json.load(f)["onboarding_key"]
    with open("/" + ca_file, "rb") as f:
        ca = f.read()
    a = Agent(%r, connect=Transport(ca).connect, onboarding_key=key)
    try:
        fresh = a.onboard()
    finally:
        a.close()
    print("@@" + json.dumps([a.store.current().client_id, fresh]))
_pv_onboard()
"""


class Result:
    """What happened to one board (a row of the fleet summary)."""

    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.ok = False
        self.copied = 0
        self.client_id = None
        self.message = ""
        self.selftest = []


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _blocks(n, block):
    return (n + block - 1) // block * block


def _kb(n):
    return "%.1f KB" % (n / 1024)


def check_runtime(facts, mpy):
    """Refuse a board whose MicroPython cannot run the bundle."""
    version = tuple(facts["version"][:3])
    shown = ".".join(str(x) for x in version)
    if version < MIN_VERSION:
        raise ProvisionError("MicroPython %s on the board is too old: this bundle needs 1.23 or newer (the tls "
                             "module, .mpy 6.3); flash a current release from micropython.org/download" % shown)
    if mpy is not None and facts["mpy"] & 0xFF != mpy[0]:
        raise ProvisionError("the board (MicroPython %s) reads .mpy version %d but mpy-cross made version %d: "
                             "use an mpy-cross matching the board's MicroPython, or --no-mpy"
                             % (shown, facts["mpy"] & 0xFF, mpy[0]))


def prepare(opts, key_path):
    """Everything to write but config.json and secrets.json (settings() once the board's are known),
    checked on the host: ({board path: bytes}, onboarding key or None, .mpy version, key profile)."""
    key = pb.read_onboarding_key(key_path) if key_path else None
    ca = pb.ca_der(opts.ca) if opts.ca else None
    if opts.config:  # the template gives the whole config: refused here already, before the board is opened
        settings(opts, key, {})
    files = pb.bundle_files(opts.no_mpy)
    payload = {"/" + k: Path(v).read_bytes() for k, v in files.items()}
    if ca is not None:
        payload["/" + pb.DEFAULT_CA_FILE] = ca
    payload_profile = pb.key_profile(key) if key else None
    return payload, key, pb.mpy_version_of(files), payload_profile


def settings(opts, key, board):
    """(config, secrets, warnings), checked: the flags over the --config template or, without one, over
    the board's own config.json; the Wi-Fi password and onboarding key given override the board's
    secrets.json, whose other entries are kept (board: {path: JSON} of the board's two files). A run
    that changes one setting must not reset the rest, nor take the Wi-Fi password off the board."""
    gateway = opts.gateway or (key["content"]["baseUrl"] if key else None)
    base = board.get("/" + pb.CONFIG_FILE)
    cfg = pb.compose_config(opts.config, gateway, opts.wifi_ssid, pb.DEFAULT_CA_FILE, opts.set or (),
                            base=None if opts.config or not isinstance(base, dict) else base)
    kept = board.get("/" + pb.SECRETS_FILE)
    secrets = dict(kept) if isinstance(kept, dict) else {}
    secrets.update(pb.compose_secrets(wifi_password(opts), key))
    # an onboarding key kept on the board as a file name there is checked by the board, not here
    named = isinstance(secrets.get("onboarding_key"), str)
    try:
        warnings = pb.validate_config(cfg, {k: v for k, v in secrets.items()
                                            if not (named and k == "onboarding_key")})
    except ProvisionError as e:
        if opts.config or not isinstance(base, dict):
            raise
        raise ProvisionError("%s (the board's own config.json with the flags given; --config FILE replaces it)"
                             % e) from None
    return cfg, secrets, warnings


def wifi_password(opts):
    if opts.wifi_password_file:
        try:
            # utf-8-sig: a byte-order mark (PowerShell, older Notepad) is no part of the password
            return Path(opts.wifi_password_file).read_text(encoding="utf-8-sig").strip("\r\n")
        except OSError:
            raise ProvisionError("--wifi-password-file %s: file not found" % opts.wifi_password_file) from None
        except UnicodeDecodeError:  # its message would show a byte of the password
            raise ProvisionError("--wifi-password-file %s: not UTF-8 text (UTF-16 from PowerShell?); save it as "
                                 "UTF-8" % opts.wifi_password_file) from None
    return os.environ.get(WIFI_PASSWORD_ENV) or None


def plan(payload, state, facts, cfg, drop_queued=False):
    """(files to write, stale files to remove); refuses when the flash cannot hold them and the spool,
    and when the spools' max_bytes would be lower than what the board holds queued (the node would
    delete the oldest readings at its next sample), unless drop_queued."""
    changed = sorted(p for p in payload if state.get(p, (None, None))[1] != _sha(payload[p]))
    # and the temp file of a write cut short (a pulled cable) next to any file provisioning writes
    stale = sorted(p for p in state if p.startswith(tuple(t + "/" for t in OWNED_TREES)) and p not in payload
                   or p.endswith(".tmp") and p[:-4] in payload)
    block = facts["block"] or 4096
    grow = sum(_blocks(len(payload[p]), block) - _blocks(state[p][0], block) if p in state
               else _blocks(len(payload[p]), block) for p in changed)
    grow -= sum(_blocks(state[p][0], block) for p in stale)
    transient = max([_blocks(len(payload[p]), block) for p in changed] or [0])  # temp file before its rename
    spool = cfg.get("spool", {}).get("max_bytes", 262144) if isinstance(cfg.get("spool"), dict) else 262144
    events = max(4096, spool // 8)  # the events' spool beside the readings' (firmware/app.py)
    queued = facts.get("queued") or {}
    # per spool: its size, and the spool.max_bytes that would hold what is queued in it
    for folder, limit, what, scale in (("ts", spool, "readings", 1), ("ev", events, "events", 8)):
        if queued.get(folder, 0) > limit and not drop_queued:
            raise ProvisionError("the board holds %s of queued %s (%s/%s), more than spool.max_bytes allows them "
                                 "(%s): the node would delete the oldest at its next sample. Let it upload them "
                                 "first, keep spool.max_bytes at %d or more, or give --drop-queued to accept the "
                                 "loss" % (_kb(queued[folder]), what, STORE_SPOOL, folder, _kb(limit),
                                           queued[folder] * scale))
    spool += events
    # the readings and events already queued on the board (under /spool) are counted as used: only the
    # spools' room still to fill is needed, or a board holding a backlog is refused
    room = max(spool - facts.get("spool", 0), 0)
    needed = max(grow, 0) + transient + room + RESERVE_BYTES
    if facts["free"] < needed:
        raise ProvisionError("not enough free flash: %s free of %s, needs %s (files %s, spools still to fill %s "
                             "of %s, reserve %s); delete files of your own from the board (mpremote fs rm; not "
                             "/spool: queued readings) or lower spool.max_bytes"
                             % (_kb(facts["free"]), _kb(facts["total"]), _kb(needed), _kb(max(grow, 0) + transient),
                                _kb(room), _kb(spool), _kb(RESERVE_BYTES)))
    if "/" + cfg["ca_file"] not in payload and "/" + cfg["ca_file"] not in state:
        raise ProvisionError("the board has no %s yet: give the gateway's root CA with --ca FILE (PEM or DER)"
                             % cfg["ca_file"])
    return changed, stale


def _modules(payload):
    """Module names to import in the self-test: the library and firmware's top level (boards and
    sensors import hardware modules only a real board has)."""
    names = []
    for p in sorted(payload):
        if p.startswith("/lib/") and p.endswith((".py", ".mpy")):
            mod = p[5:].rsplit(".", 1)[0].replace("/", ".")
        elif p.startswith("/firmware/") and p.count("/") == 2 and p.endswith((".py", ".mpy")):
            mod = p[1:].rsplit(".", 1)[0].replace("/", ".")
        else:
            continue
        names.append(mod[:-9] if mod.endswith(".__init__") else mod)
    return names


def provision_board(port, opts, key_path=None, name=None, say=print):
    """Provision one board; returns a Result (result.ok, result.message) and never raises ProvisionError."""
    res = Result(name or port, port)
    try:
        _provision(port, opts, key_path, res, say)
    except ProvisionError as e:
        res.message = str(e)
        say("FAILED %s: %s" % (res.name, e))
    return res


def _provision(port, opts, key_path, res, say):
    say("== %s (%s)" % (res.name, port))
    payload, key, mpy, profile = prepare(opts, key_path)
    with BoardLink(port, timeout=opts.timeout) as link:
        facts = link.facts()
        say("board: MicroPython %s (%s), .mpy v%d, flash %s free of %s, heap %s free"
            % (".".join(str(x) for x in facts["version"]), facts["machine"], facts["mpy"] & 0xFF,
               _kb(facts["free"]), _kb(facts["total"]), _kb(facts["heap_free"])))
        modules = _modules(payload)  # the self-test imports them, from the image if it carries them
        image = {n: p for n, p in (facts.get("image") or {}).items() if n in IMAGE_TREES}
        if image:
            _leave_to_image(payload, image, say)
        check_runtime(facts, mpy if any(p.endswith(".mpy") for p in payload) else None)
        on_board = link.json_files(["/" + pb.CONFIG_FILE, "/" + pb.SECRETS_FILE, TIME_FILE])
        cfg, secrets, warnings = settings(opts, key, on_board)
        for w in warnings:
            say("config warning: %s" % w)
        if opts.onboard and "onboarding_key" not in secrets:  # refused before the first write
            raise ProvisionError("--onboard needs an onboarding key: give it with --key FILE")
        payload["/" + pb.CONFIG_FILE] = pb.json_bytes(cfg)
        payload["/" + pb.SECRETS_FILE] = pb.json_bytes(secrets)
        if profile == "RSA_3072" or opts.rsa_next:
            _add_rsa_keys(link, payload, opts, say)
        # a lower bound for the board's clock after a power cut, until NTP or the gateway's Date gives
        # the time (firmware/app.py: the ESP32 checks certificate dates against it); written unless the
        # board's is at most a day older (firmware/app.py renews it daily; a re-run then copies nothing):
        # an old one (a board off for months) would start the clock before the notBefore of a gateway
        # certificate renewed since; a newer one (this computer's clock behind) is kept
        kept = on_board.get(TIME_FILE)
        if not isinstance(kept, int) or kept < int(time.time()) - 86400:
            payload[TIME_FILE] = b"%d" % int(time.time())
        state = link.state(list(payload) + [p + ".tmp" for p in payload] + ["/" + cfg["ca_file"]], OWNED_TREES)
        changed, stale = plan(payload, state, facts, cfg, opts.drop_queued)
        say("plan: %d of %d files to copy (%s), %d stale to remove"
            % (len(changed), len(payload), _kb(sum(len(payload[p]) for p in changed)), len(stale)))
        if opts.dry_run:
            for p in changed:
                say("  would copy %s (%d bytes)" % (p, len(payload[p])))
            for p in stale:
                say("  would remove %s" % p)
            res.ok = True
            res.message = "dry run: nothing written"
            say(res.message)
            return
        for i, p in enumerate(changed, 1):
            got = link.write_file(p, payload[p])
            if got != _sha(payload[p]):
                raise ProvisionError("%s arrived damaged on the board (SHA-256 differs); try again, or use "
                                     "a shorter USB cable" % p)
            say("  [%d/%d] %s (%d bytes)" % (i, len(changed), p, len(payload[p])))
        for p in stale:
            link.remove(p)
            say("  removed %s" % p)
        res.copied = len(changed)
        if opts.onboard:
            _onboard(link, cfg, payload, res, say)
        if not opts.no_selftest:
            _selftest(link, cfg, modules, res, say)
        if not opts.no_restart:
            link.restart()
            say("soft reset: the board starts main.py")
    failed = [r for r in res.selftest if r[1] == "FAIL"]
    res.ok = not failed
    res.message = "self-test failed: " + ", ".join(r[0] for r in failed) if failed else "ok"


def _leave_to_image(payload, image, say):
    """The packages the board's firmware image carries (frozen, or a ROMFS partition) run from it:
    this bundle's copies are not written, and copies on the flash are removed as stale (a /firmware
    copy would run instead of the image's, beside the image's mindconnect: two versions mixed; a
    /lib copy would never run)."""
    for name in sorted(image):
        tree = IMAGE_TREES[name]
        for p in [p for p in payload if p.startswith(tree)]:
            del payload[p]
        say("the board's firmware image carries %s (%s): the board runs that; %s is not copied"
            % (name, image[name], tree.rstrip("/")))
    if len(image) < len(IMAGE_TREES):
        say("warning: the image carries %s but not %s, which is copied from this bundle: both must be of "
            "one version (firmware/manifest.py freezes both)" % (", ".join(sorted(image)),
                                                                 ", ".join(sorted(set(IMAGE_TREES) - set(image)))))


def _add_rsa_keys(link, payload, opts, say):
    """RSA_3072: keys made here for the board's agent (the one it registers, with --rsa-next also the
    next one), each only when the board lacks it. Only kids are printed, never key material."""
    paths = [STORE_DIR + "/" + n for n in ("rsa_key", "rsa_next")]
    on_board = link.state(paths, ())
    files, kids = pb.rsa_key_files(STORE_DIR, on_board, opts.rsa_next)
    for path in paths:
        if path in files:
            say("RSA key %s made on this computer for %s (3072 bits; only the board gets the private key)"
                % (kids[path], path))
        elif path in on_board:
            say("the board keeps its RSA key %s" % path)
    payload.update(files)


def _onboard(link, cfg, payload, res, say):
    secrets_path = "/" + pb.SECRETS_FILE
    say("onboarding on the board...")
    link.fresh(helpers=False)
    client_id, fresh = link.call(ONBOARD_CODE % STORE_DIR, timeout=max(60, link.timeout))
    link.fresh()
    res.client_id = client_id
    say("onboarded: client id %s%s" % (client_id, "" if fresh else " (was already onboarded)"))
    # the key has done its work: keep only the Wi-Fi password in secrets.json
    import json
    secrets = json.loads(payload[secrets_path])
    secrets.pop("onboarding_key", None)
    payload[secrets_path] = pb.json_bytes(secrets)
    link.write_file(secrets_path, payload[secrets_path])
    say("onboarding key deleted from the board")


def _selftest(link, cfg, modules, res, say):
    gateway = cfg.get("gateway")
    res.selftest = link.call("_pv_selftest(%r, %r, %r)" % (modules, gateway, "/" + cfg["ca_file"]),
                             timeout=max(60, link.timeout))
    say("self-test:")
    for check, status, detail in res.selftest:
        if check == "clock":
            import time
            detail = "board clock %+d s from this computer's" % (int(detail) - int(time.time()))
        say("  %-8s %-4s %s" % (check, status, detail))


def read_fleet(path):
    """[(port, name, key file)] from a CSV with the header port,name,key (key may be empty)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8" starts with a BOM
            rows = list(csv.DictReader(f))
    except OSError:
        raise ProvisionError("fleet file %s: not found" % path) from None
    out = []
    for n, row in enumerate(rows, 2):
        port = (row.get("port") or "").strip()
        if not port:
            raise ProvisionError("fleet file %s line %d: no port; the columns are port,name,key" % (path, n))
        key = (row.get("key") or "").strip() or None
        if key and not os.path.isabs(key):
            key = str(Path(path).resolve().parent / key)
        out.append((port, (row.get("name") or "").strip() or port, key))
    if not out:
        raise ProvisionError("fleet file %s: no boards; the columns are port,name,key" % path)
    return out


def summary(results):
    """The fleet summary table as text."""
    rows = [("name", "port", "result", "copied", "client id", "detail")]
    for r in results:
        rows.append((r.name, r.port, "ok" if r.ok else "FAILED", str(r.copied), r.client_id or "-", r.message))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[5] for row in rows)


def parser():
    ap = argparse.ArgumentParser(prog="python -m tools.provision", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", nargs="?", help="the board's serial port, e.g. /dev/ttyUSB0 (not with --fleet)")
    ap.add_argument("--fleet", metavar="CSV", help="provision the boards listed in CSV (port,name,key)")
    ap.add_argument("--key", metavar="FILE", help="the agent's onboarding key (JSON from Insights Hub)")
    ap.add_argument("--name", help="a name for the board in the report")
    ap.add_argument("--ca", metavar="FILE", help="the gateway's root CA certificate, PEM or DER (written as DER)")
    ap.add_argument("--config", metavar="FILE", help="config.json template (default: one simulated sensor)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a setting, dotted for nested ones: --set spool.max_bytes=65536")
    ap.add_argument("--gateway", metavar="URL", help="gateway URL (default: the key's baseUrl)")
    ap.add_argument("--wifi-ssid", metavar="SSID", help="Wi-Fi network name")
    ap.add_argument("--wifi-password-file", metavar="FILE",
                    help="file holding the Wi-Fi password (or set %s)" % WIFI_PASSWORD_ENV)
    ap.add_argument("--no-mpy", action="store_true", help="copy .py sources instead of .mpy (needs more heap)")
    ap.add_argument("--rsa-next", action="store_true",
                    help="RSA_3072: also make the key the agent registers at its next rotation (default: it "
                         "registers the same key again)")
    ap.add_argument("--onboard", action="store_true", help="onboard on the board now and print its client id")
    ap.add_argument("--no-selftest", action="store_true", help="skip the self-test on the board")
    ap.add_argument("--no-restart", action="store_true", help="leave the board in its REPL afterwards")
    ap.add_argument("--drop-queued", action="store_true",
                    help="accept a spool.max_bytes lower than the readings the board holds queued (the node "
                         "deletes the oldest)")
    ap.add_argument("--dry-run", action="store_true", help="show what would be copied; write nothing")
    ap.add_argument("--timeout", type=int, default=20, help="seconds to wait for the board per step (20)")
    return ap


def main(argv=None, say=print):
    args = parser().parse_args(argv)
    if bool(args.port) == bool(args.fleet):
        parser().error("give either a PORT or --fleet CSV")
    if args.fleet:
        try:
            boards = read_fleet(args.fleet)
        except ProvisionError as e:
            say("FAILED: %s" % e)
            return 1
        results = [provision_board(port, args, key, name, say) for port, name, key in boards]
        say("")
        for line in summary(results).splitlines():
            say(line)
        return 0 if all(r.ok for r in results) else 1
    res = provision_board(args.port, args, args.key, args.name, say)
    if res.ok:
        say("%s: %s" % (res.name, res.message))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
