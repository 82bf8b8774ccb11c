"""The errors for unexpected answers from the hub (agent._failure): loaded when one came, then dropped.
A wake cycle that goes well never needs this code."""

import json

from mindconnect.clock import parse_http_date
from mindconnect.errors import AuthError, RateLimited, Rejected, ServerError


def retry_after_s(headers, now_s):
    """Seconds from Retry-After (delta seconds or an HTTP date), or None; at most 6 hours: a bogus
    value (a year) would silence the node, its backoff kept in RTC memory across resets."""
    v = headers.get("retry-after")
    if not v:
        return None
    v = v.strip()
    try:
        return min(max(0, int(v)), 21600)
    except ValueError:
        pass
    try:
        return min(max(0, parse_http_date(v) - now_s), 21600)
    except ValueError:
        return None


def server_words(r):
    """The hub's own explanation from an error body (short), or the reason phrase."""
    try:
        doc = json.loads(r.body)
        if isinstance(doc, dict):
            for k in ("message", "error_description", "error"):
                if isinstance(doc.get(k), str) and doc[k]:
                    return doc[k][:200]
    except (ValueError, TypeError):
        pass
    return r.reason or ""


def error_for(agent, r, what):
    """Agent._failure: the error for the unexpected response r to the request called what."""
    words = server_words(r)
    if r.status == 429:
        return RateLimited("%s: the hub is rate limiting (429); try again later" % what, 429,
                           retry_after_s(r.headers, agent.clock.now()))
    if r.status >= 500:
        return ServerError("%s: the hub failed (%d %s); try again later" % (what, r.status, words), r.status,
                           retry_after_s(r.headers, agent.clock.now()))
    if r.status == 401:
        return AuthError("%s: not authorized (401) even with a new token" % what, 401)
    return Rejected("%s refused (%d): %s" % (what, r.status, words), r.status)
