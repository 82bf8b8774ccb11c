"""One error family for everything the library raises; callers act on the class.

    MindConnectError           base; .retryable says whether trying later can help
      NetworkError             connect/read/write failed, timeout, connection dropped (retry later)
        TLSError               handshake or certificate/host name verification failed
        ConnectionClosed       the peer closed or reset the connection (http.py resends once on a
                               reused keep-alive connection that was closed before any response byte)
      ProtocolError            malformed or truncated response, limits exceeded (retry later)
      ServerError              5xx (retry later); .status, .retry_after
        RateLimited            429; .retry_after in seconds (or None)
      AuthError                401/400 from IAM: token or credentials refused; .status
        OnboardingRequired     no usable identity is left: a new onboarding key is needed
      Rejected                 the request was refused as it stands (400/403/404/409/412/413...);
                               .status and .message (the server's words); do not retry unchanged
      ConfigError              bad input from the user or program, found before anything was sent

Messages never contain secrets (onboarding key, client secret, tokens).
"""


class MindConnectError(Exception):
    retryable = False

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


NetworkError = type("NetworkError", (MindConnectError,), {"retryable": True})
TLSError = type("TLSError", (NetworkError,), {})
ConnectionClosed = type("ConnectionClosed", (NetworkError,), {})
ProtocolError = type("ProtocolError", (MindConnectError,), {"retryable": True})


class ServerError(MindConnectError):
    retryable = True

    def __init__(self, message, status=None, retry_after=None):
        super().__init__(message, status)
        self.retry_after = retry_after


RateLimited = type("RateLimited", (ServerError,), {})
AuthError = type("AuthError", (MindConnectError,), {})
OnboardingRequired = type("OnboardingRequired", (AuthError,), {})
Rejected = type("Rejected", (MindConnectError,), {})
ConfigError = type("ConfigError", (MindConnectError,), {})


def msg(words, n):
    """Line n of words: a module's error wording as one str constant (one object in the heap in ROM
    form, not one per message)."""
    i = 0
    for _ in range(n):
        i = words.index("\n", i) + 1
    j = words.find("\n", i)
    return words[i:] if j < 0 else words[i:j]
