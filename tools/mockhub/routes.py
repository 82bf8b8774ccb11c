"""URL routing of the agent-facing API: path (query ignored, as the Node client may end a URL in a
bare '?') and method to an endpoint name (used for faults and counters) and a handler."""

import re

from tools.mockhub import dataapi, iam

_ID = r"([^/]+)"
# (methods, path pattern, endpoint name, handler(hub, req, agent, *groups), needs an access token)
ROUTES = [
    (("POST",), r"/api/agentmanagement/v3/register", "register", None, False),
    (("PUT",), r"/api/agentmanagement/v3/register/" + _ID, "rotate", None, False),
    (("POST",), r"/api/agentmanagement/v3/oauth/token", "token", None, False),
    (("GET",), r"/api/agentmanagement/v3/oauth/token_keys?", "token_key", None, False),
    (("GET",), r"/api/agentmanagement/v3/agents/" + _ID + "/dataSourceConfiguration", "dsc", dataapi.dsc_get, True),
    (("PUT",), r"/api/agentmanagement/v3/agents/" + _ID + "/dataSourceConfiguration", "dsc", dataapi.dsc_put, True),
    (("POST",), r"/api/mindconnect/v3/dataPointMappings", "mappings", dataapi.mapping_post, True),
    (("GET",), r"/api/mindconnect/v3/dataPointMappings", "mappings", dataapi.mapping_list, True),
    (("DELETE",), r"/api/mindconnect/v3/dataPointMappings/" + _ID, "mappings", dataapi.mapping_delete, True),
    (("POST",), r"/api/mindconnect/v3/exchange", "exchange", dataapi.exchange, True),
    (("GET", "POST"), r"/api/mindconnect/v3/diagnosticActivations", "diagnostics", dataapi.diagnostics, True),
    (("GET", "PUT", "DELETE"), r"/api/mindconnect/v3/diagnosticActivations/" + _ID, "diagnostics",
     dataapi.diagnostics, True),
    (("GET",), r"/api/mindconnect/v3/diagnosticActivations/" + _ID + "/(messages)", "diagnostics",
     dataapi.diagnostics, True),
    (("GET",), r"/api/mindconnect/v3/diagnosticInformation", "diagnostics", dataapi.diagnostic_information, True),
    (("POST",), r"/api/eventmanagement/v3/events", "events", dataapi.event_post, True),
    (("PUT",), r"/api/iotfile/v3/files/" + _ID + "/(.+)", "files", dataapi.iotfile_put, True),
    (("POST",), r"/api/datalake/v3/generateUploadObjectUrls", "datalake", dataapi.datalake_urls, True),
    # where the signed URLs of the data lake point (Azure Blob or S3 in the cloud): no token, a signature
    (("PUT",), dataapi.DATALAKE_PUT + "(.+)", "datalake", dataapi.datalake_put, False),
]
_COMPILED = [(m, re.compile(p + r"/?\Z"), name, h, auth) for m, p, name, h, auth in ROUTES]
IAM_ENDPOINTS = ("register", "rotate", "token", "token_key")


class Route:
    def __init__(self, endpoint, handler, args, needs_token, allowed=None):
        self.endpoint = endpoint
        self.handler = handler
        self.args = args
        self.needs_token = needs_token
        self.allowed = allowed  # set when the path exists but not for this method


def match(method, path):
    """The Route for (method, path); endpoint None when nothing matches."""
    allowed = []
    for methods, rx, name, handler, auth in _COMPILED:
        m = rx.match(path)
        if not m:
            continue
        if method in methods:
            return Route(name, handler, m.groups(), auth)
        allowed += methods
    return Route(None, None, (), False, allowed)


def client_of(route, req):
    """Which agent a request is about, from what can be read without verifying (for faults)."""
    if route.endpoint == "register":
        tok = iam._bearer(req)
        try:
            return iam.jwts.Parsed(tok).claims.get("sub") if tok else None
        except iam.jwts.JWTError:
            return None
    if route.endpoint == "rotate":
        return route.args[0]
    if route.endpoint == "token":
        return iam.assertion_client(req) if req.body else None
    if route.endpoint == "datalake" and route.handler is dataapi.datalake_put:
        return req.query.get("client", [None])[0]
    return iam.token_client(req)
