"""Faults to inject, per agent (or any agent) and per endpoint, each for `count` requests.

A fault either answers with a status code (401, 403, 429 + Retry-After, 500, 503...), or acts on the
transport (drop the connection after N bytes of the request or the response, truncate or garble the
response), optionally after a delay; `skew_s` shifts the Date and Server-Time headers it answers with.
The endpoint "tls" acts at the handshake: `wrong_host=True` presents a certificate for another name.
"""

import os
import threading

ENDPOINTS = ("register", "token", "token_key", "rotate", "dsc", "mappings", "exchange", "diagnostics",
             "events", "files", "datalake", "tls", "*")
_GARBAGE_PREFIX = b"HTTX/9.9 ???\x00\xff garbled by mockhub\r\n"


class Fault:
    FIELDS = ("status", "retry_after", "delay_s", "drop_after_request_bytes", "drop_after_response_bytes",
              "truncate", "garble", "skew_s", "wrong_host", "message")

    def __init__(self, client_id=None, endpoint="*", count=1, status=None, retry_after=None, delay_s=0,
                 drop_after_request_bytes=None, drop_after_response_bytes=None, truncate=False, garble=False,
                 skew_s=0, wrong_host=False, message=None):
        if endpoint not in ENDPOINTS:
            raise ValueError("unknown endpoint %r: use one of %s" % (endpoint, ", ".join(ENDPOINTS)))
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError("status must be an HTTP status code")
        if count is not None and int(count) < 1:
            raise ValueError("count must be at least 1 (or null for every request)")
        self.client_id = client_id
        self.endpoint = endpoint
        self.count = None if count is None else int(count)
        self.status = None if status is None else int(status)
        self.retry_after = retry_after
        self.delay_s = float(delay_s or 0)
        self.drop_after_request_bytes = drop_after_request_bytes
        self.drop_after_response_bytes = drop_after_response_bytes
        self.truncate = bool(truncate)
        self.garble = bool(garble)
        self.skew_s = int(skew_s or 0)
        self.wrong_host = bool(wrong_host)
        self.message = message

    def to_dict(self):
        d = {"client_id": self.client_id, "endpoint": self.endpoint, "count": self.count}
        d.update({k: getattr(self, k) for k in self.FIELDS if getattr(self, k) not in (None, False, 0)})
        return d

    @property
    def transport(self):
        """A function (head bytes, body bytes) -> bytes to send before closing, or None."""
        if self.drop_after_response_bytes is not None:
            n = int(self.drop_after_response_bytes)
            return lambda head, body: (head + body)[:n]
        if self.garble:
            return lambda head, body: (_GARBAGE_PREFIX + os.urandom(max(16, len(head) + len(body))))
        if self.truncate:
            return lambda head, body: head + body[:len(body) // 2] if body else head[:len(head) // 2]
        return None


class FaultTable:
    def __init__(self):
        self.lock = threading.Lock()
        self.faults = []

    def add(self, fault):
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self):
        with self.lock:
            self.faults = []

    def remove(self, fault):
        with self.lock:
            if fault in self.faults:
                self.faults.remove(fault)

    def list(self):
        with self.lock:
            return [f.to_dict() for f in self.faults]

    def take(self, client_id, endpoint):
        """The first fault matching this request, with one use consumed; None if there is none."""
        with self.lock:
            for f in self.faults:
                if f.endpoint not in (endpoint, "*") or (f.endpoint == "*" and endpoint == "tls"):
                    continue
                if f.client_id is not None and f.client_id != client_id:
                    continue
                if f.count is not None:
                    f.count -= 1
                    if f.count == 0:
                        self.faults.remove(f)
                return f
        return None
