"""A strict parser for exchange bodies: multipart/mixed of multipart/related(meta, payload).

Accepts CRLF or bare LF line ends (the Node client frames with LF), any boundary, quoted or not,
and a body that ends right after the closing delimiter (MCL) or with a line end. Anything else that
is wrong raises FramingError with a message that names the item and the problem.
"""

import re

META_TYPE = "application/vnd.siemens.mindsphere.meta+json"


class FramingError(ValueError):
    pass


class Part:
    def __init__(self, headers, content):
        self.headers = headers  # lower-case name -> value
        self.content = content  # bytes

    @property
    def content_type(self):
        return self.headers.get("content-type", "")


class Item:
    """One exchange item: its meta (parsed JSON later), payload content type and bytes."""

    def __init__(self, index, meta_bytes, payload_type, payload):
        self.index = index
        self.meta_bytes = meta_bytes
        self.payload_type = payload_type
        self.payload = payload


def parse_content_type(value):
    """('multipart/mixed', {'boundary': ...}) from a Content-Type header value."""
    pieces = value.split(";")
    params = {}
    for p in pieces[1:]:
        p = p.strip()
        if not p:
            continue
        if "=" not in p:
            raise FramingError("Content-Type parameter %r has no value" % p)
        k, v = p.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] == '"':
            v = v[1:-1]
        params[k.strip().lower()] = v
    return pieces[0].strip().lower(), params


def _boundary_of(content_type, where):
    mime, params = parse_content_type(content_type)
    b = params.get("boundary", "")
    if not b:
        raise FramingError("%s: Content-Type %r has no boundary parameter" % (where, content_type))
    if len(b) > 70:
        raise FramingError("%s: boundary is longer than 70 characters" % where)
    return mime, b


def _parse_headers(block, where):
    headers = {}
    for line in re.split(rb"\r?\n", block):
        if not line:
            continue
        if b":" not in line:
            raise FramingError("%s: header line %r has no colon" % (where, line[:60].decode("latin-1")))
        name, value = line.split(b":", 1)
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def split_parts(body, boundary, where):
    """The parts between the delimiters of `boundary` in body (bytes); strict about the framing."""
    b = re.escape(boundary.encode("latin-1"))
    delim = re.compile(rb"(?:\A|\r?\n)--" + b + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    matches = list(delim.finditer(body))
    if not matches:
        raise FramingError("%s: no delimiter --%s found" % (where, boundary))
    first = matches[0]
    if body[:first.start()].strip():
        raise FramingError("%s: text before the first delimiter --%s" % (where, boundary))
    closes = [m for m in matches if m.group(1)]
    if not closes:
        raise FramingError("%s: closing delimiter --%s-- is missing (body truncated?)" % (where, boundary))
    close = closes[0]
    if body[close.end():].strip():
        raise FramingError("%s: data after the closing delimiter --%s--" % (where, boundary))
    opens = [m for m in matches if m.start() < close.start()]
    if not opens or opens[0] is not first or first.group(1):
        raise FramingError("%s: no part before the closing delimiter" % where)
    parts = []
    for m, nxt in zip(opens, opens[1:] + [close]):
        chunk = body[m.end():nxt.start()]
        head_end = re.search(rb"\r?\n\r?\n", chunk)
        if chunk.startswith(b"\r\n") or chunk.startswith(b"\n"):
            head, content = b"", chunk[1 if chunk[:1] == b"\n" else 2:]
        elif head_end:
            head, content = chunk[:head_end.start()], chunk[head_end.end():]
        else:
            raise FramingError("%s part %d: headers are not followed by a blank line" % (where, len(parts) + 1))
        parts.append(Part(_parse_headers(head, "%s part %d" % (where, len(parts) + 1)), content))
    return parts


def parse_exchange(content_type, body):
    """The items of an exchange body; FramingError for anything that is not exactly two levels."""
    mime, boundary = _boundary_of(content_type or "", "request")
    if mime != "multipart/mixed":
        raise FramingError("request Content-Type must be multipart/mixed, not %r" % mime)
    items = []
    for n, outer in enumerate(split_parts(body, boundary, "request"), 1):
        where = "item %d" % n
        if "content-type" not in outer.headers:
            raise FramingError("%s: part has no Content-Type header" % where)
        imime, ib = _boundary_of(outer.content_type, where)
        if imime != "multipart/related":
            raise FramingError("%s: Content-Type must be multipart/related, not %r" % (where, imime))
        inner = split_parts(outer.content, ib, where)
        if len(inner) != 2:
            raise FramingError("%s: needs exactly two parts (meta, payload), found %d" % (where, len(inner)))
        meta, payload = inner
        if parse_content_type(meta.content_type)[0] != META_TYPE:
            raise FramingError("%s: first part must be %s, not %r" % (where, META_TYPE, meta.content_type))
        ptype = parse_content_type(payload.content_type)[0]
        if not ptype:
            raise FramingError("%s: payload part has no Content-Type header" % where)
        if ptype.startswith("multipart/"):
            raise FramingError("%s: payload may not be multipart (exactly two levels)" % where)
        items.append(Item(n, meta.content, payload.content_type, payload.content))
    return items
