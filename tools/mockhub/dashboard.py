"""The dashboard: one server-rendered HTML page with inline SVG charts; no scripts, no CDN.

It refreshes itself with a meta tag. Secrets never appear here: credentials are shown as
fingerprints only.
"""

import datetime
import html

CHART_W, CHART_H, PAD = 420, 120, 28
MAX_POINTS = 500
RECENT = 15

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;margin:.3em 0;background:#fff} td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top} th{background:#eee} .muted{color:#777} .bad{color:#b00020}
.ok{color:#1b7f2a} .charts{display:flex;flex-wrap:wrap;gap:12px} .chart{background:#fff;border:1px solid #ddd;
padding:4px} code{font-size:12px}
"""


def _t(ts):
    if ts is None:
        return '<span class="muted">never</span>'
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _e(v):
    return html.escape("" if v is None else str(v))


def _table(headers, rows, empty="nothing yet"):
    if not rows:
        return '<p class="muted">%s</p>' % empty
    out = ["<table><tr>" + "".join("<th>%s</th>" % _e(h) for h in headers) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join("<td>%s</td>" % c for c in r) + "</tr>")
    return "".join(out) + "</table>"


def _parse_ms(ts):
    dt = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def chart_svg(title, points):
    """An SVG line chart of [(epoch seconds, float)], newest MAX_POINTS only."""
    points = sorted(points)[-MAX_POINTS:]
    w, h = CHART_W, CHART_H
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">'
             % (w, h, _e(title)), '<rect width="%d" height="%d" fill="#fff"/>' % (w, h),
             '<text x="4" y="13" font-size="12" fill="#333">%s (%d)</text>' % (_e(title), len(points))]
    if points:
        t0, t1 = points[0][0], points[-1][0]
        lo, hi = min(v for _, v in points), max(v for _, v in points)
        span_t, span_v = (t1 - t0) or 1, (hi - lo) or 1
        xy = ["%.1f,%.1f" % (PAD + (t - t0) / span_t * (w - PAD - 6), h - 16 - (v - lo) / span_v * (h - 46))
              for t, v in points]
        parts.append('<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="%s"/>' % " ".join(xy))
        if len(xy) == 1:
            x, y = xy[0].split(",")
            parts.append('<circle cx="%s" cy="%s" r="3" fill="#1565c0"/>' % (x, y))
        parts.append('<text x="4" y="34" font-size="10" fill="#666">%s</text>' % _e("%g" % hi))
        parts.append('<text x="4" y="%d" font-size="10" fill="#666">%s</text>' % (h - 16, _e("%g" % lo)))
        parts.append('<text x="%d" y="%d" font-size="10" fill="#666">%s</text>'
                     % (PAD, h - 3, _e(_t(t0))))
        parts.append('<text x="%d" y="%d" font-size="10" fill="#666" text-anchor="end">%s</text>'
                     % (w - 4, h - 3, _e(_t(t1))))
    else:
        parts.append('<text x="%d" y="%d" font-size="12" fill="#999">no numeric values</text>' % (PAD, h // 2))
    return "".join(parts) + "</svg>"


def _charts(hub, client_id):
    series = {}
    for ts, dp, value, _q in hub.timeseries(client_id):
        try:
            v = 1.0 if value == "true" else 0.0 if value == "false" else float(value)
            series.setdefault(dp, []).append((_parse_ms(ts), v))
        except ValueError:
            series.setdefault(dp, [])
    if not series:
        return '<p class="muted">no time series yet</p>'
    return '<div class="charts">' + "".join('<div class="chart">%s</div>' % chart_svg(dp, pts)
                                            for dp, pts in sorted(series.items())) + "</div>"


def _agent_section(hub, a):
    cid = a["client_id"]
    out = ['<h2>%s <code class="muted">%s</code></h2>' % (_e(a["name"]), _e(cid))]
    out.append(_charts(hub, cid))
    events = hub.events(cid)[-RECENT:]
    out.append("<h3>Recent events</h3>" + _table(
        ("timestamp", "severity", "type", "description", "via"),
        [(_e(e.get("timestamp")), _e(e.get("severity")), _e(e.get("type") or e.get("typeId")),
          _e(e.get("description")), _e(e["_source"])) for e in reversed(events)]))
    files = hub.files(cid)[-RECENT:]
    out.append("<h3>Recent files</h3>" + _table(
        ("name", "size", "sha256", "via"),
        [(_e(f.name), _e(f.size), "<code>%s</code>" % _e(f.sha256[:16]), _e(f.source)) for f in reversed(files)]))
    dropped = hub.dropped(cid)[-RECENT:]
    out.append("<h3>Dropped items</h3>" + _table(
        ("when", "item", "kind", "where", "reason"),
        [(_e(_t(d["at"])), _e(d["item"]), _e(d["kind"]), _e(d["location"]), '<span class="bad">%s</span>'
          % _e(d["reason"])) for d in reversed(dropped)], "none dropped"))
    return "".join(out)


def render(hub, refresh_s=5):
    agents = hub.agents()
    rows = []
    for a in agents:
        onboarded = '<span class="ok">yes</span>' if a["onboarded"] else '<span class="muted">no</span>'
        errors = '<span class="bad">%d</span>' % a["errors"] if a["errors"] else "0"
        rows.append((_e(a["name"]), "<code>%s</code>" % _e(a["client_id"]), onboarded, _t(a["secret_expires_at"]),
                     "<code>%s</code>" % _e(a["secret_fingerprint"]), _e(a["rotations"]), _e(a["tokens_issued"]),
                     _t(a["last_token_at"]), _t(a["last_exchange_at"]), errors))
    c = hub.counters()
    rejected = hub.rejected()[-RECENT:]
    body = ["<h1>mockhub</h1>",
            '<p class="muted">agent API %s &middot; time %s &middot; connections %d, TLS handshakes %d, requests %d'
            ' &middot; refreshes every %d s</p>' % (_e(hub.base_url), _t(hub.now()), c["connections"],
                                                    c["handshakes"], c["requests"], refresh_s),
            "<h2>Agents</h2>",
            _table(("name", "client id", "onboarded", "secret expires", "secret", "rotations", "tokens",
                    "last token", "last exchange", "errors"), rows, "no agents: create one with "
                   "<code>python -m tools.mockhub create-agent</code>")]
    body += [_agent_section(hub, a) for a in agents]
    body.append("<h2>Rejected requests</h2>" + _table(
        ("when", "agent", "endpoint", "status", "reason"),
        [(_e(_t(r["at"])), "<code>%s</code>" % _e(r["client_id"] or "-"), _e(r["endpoint"]), _e(r["status"]),
          '<span class="bad">%s</span>' % _e(r["reason"])) for r in reversed(rejected)], "none"))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="%d">'
            "<title>mockhub</title><style>%s</style></head><body>%s</body></html>"
            % (refresh_s, _CSS, "".join(body)))
