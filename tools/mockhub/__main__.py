"""Command line of the mock hub.

    python -m tools.mockhub [serve] [--state DIR] [--port N] [--admin-port N] [--strict] ...
    python -m tools.mockhub create-agent [--name X] [--secret-lifetime S] [--token-lifetime S] ...
    python -m tools.mockhub agents | reset-agent ID | expire-token ID | fault ... | clear-faults
    python -m tools.mockhub counters | clock [--now T | --advance S | --release] | skew SECONDS
    python -m tools.mockhub screenshot OUT.png

Everything but `serve` talks to a running hub through its admin API (--admin URL).
"""

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.request

DEFAULT_ADMIN = "http://127.0.0.1:8081"


def _parser():
    p = argparse.ArgumentParser(prog="python -m tools.mockhub",
                                description="A local stand-in for the Insights Hub (MindConnect) agent API: "
                                            "HTTPS agent endpoints with a throwaway CA, an admin API, fault "
                                            "injection and a dashboard. Defaults to `serve`.")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="run the hub until Ctrl-C")
    s.add_argument("--state", default="state/mockhub",
                   help="state folder: SQLite database, received files, CA and keys (default: %(default)s)")
    s.add_argument("--port", type=int, default=8443, help="HTTPS port of the agent API (default: %(default)s; "
                                                          "0 picks a free one)")
    s.add_argument("--admin-port", type=int, default=8081, help="HTTP port of the dashboard and admin API "
                                                                "(default: %(default)s)")
    s.add_argument("--strict", action="store_true",
                   help="answer 400 to an exchange with any invalid item, instead of 200 + recording the drop")
    s.add_argument("--tenant", default="mocktenant", help="tenant name in onboarding keys (default: %(default)s)")
    s.add_argument("--max-body", type=int, default=10 * 1024 * 1024,
                   help="largest request body in bytes; bigger ones get 413 (default: %(default)s)")
    s.add_argument("--previous-secret-valid", default="until_new_used", choices=("until_new_used", "never", "always"),
                   help="after a rotation, whether the previous secret still gets tokens (default: %(default)s)")
    s.add_argument("--numeric-values", default="drop", choices=("drop", "accept"),
                   help="a time series value sent as a JSON number, not a string: dropped, or taken and judged "
                        "against the point's type (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="log only warnings (default logs one line per request)")

    def admin_cmd(name, help_):
        c = sub.add_parser(name, help=help_)
        c.add_argument("--admin", default=DEFAULT_ADMIN, help="admin URL of the running hub (default: %(default)s)")
        return c

    c = admin_cmd("create-agent", "create an agent and print its onboarding key JSON")
    c.add_argument("--name")
    c.add_argument("--secret-lifetime", type=int, help="client secret lifetime in seconds (default 7 days)")
    c.add_argument("--token-lifetime", type=int, help="access token lifetime in seconds (default 3600)")
    c.add_argument("--profile", choices=("SHARED_SECRET", "RSA_3072"))
    c.add_argument("--previous-secret-valid", choices=("until_new_used", "never", "always"))
    admin_cmd("agents", "list agents and their state (fingerprints only, never secrets)")
    admin_cmd("reset-agent", "offboard an agent and print a new onboarding key").add_argument("client_id")
    admin_cmd("expire-token", "make the agent's current access tokens invalid now").add_argument("client_id")
    f = admin_cmd("fault", "inject a fault (see docs/MOCKHUB.md)")
    f.add_argument("endpoint", help="register, token, token_key, rotate, dsc, mappings, exchange, diagnostics, "
                                    "events, files, tls or * (any)")
    f.add_argument("--agent", dest="client_id", help="only for this client id (default: any agent)")
    f.add_argument("--count", type=int, default=1, help="how many requests it hits (default 1; 0 = until cleared)")
    f.add_argument("--status", type=int, help="answer with this status, e.g. 401 403 429 500 503")
    f.add_argument("--retry-after", type=int, help="Retry-After header (seconds) with --status")
    f.add_argument("--delay", type=float, dest="delay_s", help="wait this many seconds before answering")
    f.add_argument("--drop-after-request-bytes", type=int, help="close the connection after N request bytes")
    f.add_argument("--drop-after-response-bytes", type=int, help="close after sending N response bytes")
    f.add_argument("--truncate", action="store_true", help="send half of the response, then close")
    f.add_argument("--garble", action="store_true", help="send bytes that are not HTTP, then close")
    f.add_argument("--skew", type=int, dest="skew_s", help="shift Date/Server-Time of the answer by N seconds")
    f.add_argument("--wrong-host", action="store_true", help="(endpoint tls) present a certificate for another "
                                                            "host name at the next handshake")
    admin_cmd("clear-faults", "remove all pending faults")
    admin_cmd("counters", "connections, TLS handshakes, requests per connection and per endpoint")
    k = admin_cmd("clock", "show or set the hub's clock (shared simulated time)")
    k.add_argument("--now", type=float, help="freeze the clock at this epoch second")
    k.add_argument("--advance", type=float, help="move the clock forward by seconds (freezes it)")
    k.add_argument("--release", action="store_true", help="follow the real clock again")
    admin_cmd("skew", "shift every Date/Server-Time header by SECONDS").add_argument("seconds", type=int)
    shot = admin_cmd("screenshot", "save a PNG of the dashboard with headless Chromium")
    shot.add_argument("out", help="PNG file to write")
    shot.add_argument("--width", type=int, default=1280)
    shot.add_argument("--height", type=int, default=1600)
    return p


def _call(admin, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(admin.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        sys.exit("mockhub: %s %s -> %d %s" % (method, path, e.code, e.read().decode(errors="replace")))
    except urllib.error.URLError as e:
        sys.exit("mockhub: cannot reach the admin API at %s (%s): is `python -m tools.mockhub serve` running?"
                 % (admin, e.reason))
    return json.loads(raw) if raw else None


def serve(args):
    from tools.mockhub import MockHub
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    hub = MockHub(args.state, strict=args.strict, port=args.port, admin_port=args.admin_port, tenant=args.tenant,
                  max_body=args.max_body, previous_secret_valid=args.previous_secret_valid,
                  numeric_values=args.numeric_values).start()
    print("mockhub agent API  %s  (CA: %s, %s)" % (hub.base_url, hub.ca_der_path, hub.ca_pem_path), flush=True)
    print("dashboard + admin  %s/" % hub.admin_url, flush=True)
    print("create an agent:   python -m tools.mockhub create-agent --admin %s" % hub.admin_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
        print("mockhub stopped", flush=True)


_COMMANDS = ("serve", "create-agent", "agents", "reset-agent", "expire-token", "fault", "clear-faults", "counters",
             "clock", "skew", "screenshot")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["serve"] + argv
    args = _parser().parse_args(argv)
    if args.cmd == "serve":
        return serve(args)
    out = None
    if args.cmd == "create-agent":
        body = {k: v for k, v in (("name", args.name), ("secret_lifetime_s", args.secret_lifetime),
                                  ("token_lifetime_s", args.token_lifetime), ("profile", args.profile),
                                  ("previous_secret_valid", args.previous_secret_valid)) if v is not None}
        res = _call(args.admin, "POST", "/admin/agents", body)
        print(res["onboarding_key_json"])
        return None
    if args.cmd == "agents":
        out = _call(args.admin, "GET", "/admin/agents")
    elif args.cmd == "reset-agent":
        print(_call(args.admin, "POST", "/admin/agents/%s/reset" % args.client_id)["onboarding_key_json"])
        return None
    elif args.cmd == "expire-token":
        out = _call(args.admin, "POST", "/admin/agents/%s/expire-token" % args.client_id)
    elif args.cmd == "fault":
        body = {k: v for k, v in vars(args).items()
                if k not in ("cmd", "admin", "count") and v is not None and v is not False}
        body["count"] = args.count or None  # 0: until cleared
        out = _call(args.admin, "POST", "/admin/faults", body)
    elif args.cmd == "clear-faults":
        _call(args.admin, "DELETE", "/admin/faults")
        out = "faults cleared"
    elif args.cmd == "counters":
        out = _call(args.admin, "GET", "/admin/counters")
    elif args.cmd == "clock":
        body = {"now": None} if args.release else {}
        if args.now is not None:
            body["now"] = args.now
        if args.advance is not None:
            body["advance"] = args.advance
        out = _call(args.admin, "POST" if body else "GET", "/admin/clock", body or None)
    elif args.cmd == "skew":
        out = _call(args.admin, "POST", "/admin/skew", {"seconds": args.seconds})
    elif args.cmd == "screenshot":
        from tools.mockhub import screenshot
        screenshot.capture(args.admin.rstrip("/") + "/?refresh=3600", args.out, args.width, args.height)
        out = "wrote " + args.out
    print(out if isinstance(out, str) else json.dumps(out, indent=1))
    return None


if __name__ == "__main__":
    main()
