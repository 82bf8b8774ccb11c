"""Wi-Fi with a time limit and backoff, and NTP time; neither can hold up sampling for long.

Wifi.connect() returns within timeout_ms, joined or not. After a failed connect() the next one
returns False at once until the backoff has passed (doubling up to backoff_max_ms), so an app that
calls connect() every cycle keeps sampling while the access point is gone for a day.
"""

NTP_DELTA_S = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
NTP_PORT = 123
# 2025-01-01 in NTP seconds of era 0: the 32-bit seconds wrap on 2036-02-07T06:28:16Z, and a smaller
# value is read in era 1, as no answer before this firmware was written can come now; but only up to
# 2050-01-01 (NTP_ERA1_END in era 1's seconds): read up to 2161, 92% of all values were a time, and a
# garbled reply set the clock a century ahead (every certificate expired). Beyond both: refused
NTP_ERA1_BELOW = 3944678400
NTP_ERA1_END = 438629504
POLL_MS = 100
RETRY_FIRST_MS = 1000

# network.WLAN status codes (ESP32 port) that end an attempt early, with what to check
FAILURES = {
    200: "the access point stopped answering (beacon timeout)",
    201: "no access point with that SSID: check wifi.ssid and the distance to the access point",
    202: "wrong password: check wifi_password in secrets.json",
    203: "association refused by the access point",
    204: "handshake timed out: check wifi_password in secrets.json",
}


class Wifi:
    """wlan: a network.WLAN(STA_IF)-like object; board gives ticks_ms, ticks_diff, ticks_add, sleep_ms."""

    def __init__(self, wlan, ssid, password, board, timeout_ms=20000, backoff_max_ms=300000, on_wait=None):
        self.on_wait = on_wait  # called at each poll while a join is awaited (a watchdog's feed)
        self.wlan = wlan
        self.ssid = ssid
        self._password = password
        self.board = board
        self.timeout_ms = timeout_ms
        self.backoff_max_ms = backoff_max_ms
        self.failures = 0
        self.next_try = None
        self.last_error = None

    def isconnected(self):
        return self.wlan.isconnected()

    def rssi(self):
        """Signal strength in dBm, or None when not connected."""
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError):
            return None

    def connect(self):
        """True once joined; False when the time limit passed or the backoff after a failure is running."""
        b = self.board
        if self.wlan.isconnected():
            self.failures = 0
            self.next_try = None
            return True
        start = b.ticks_ms()
        if self.next_try is not None and b.ticks_diff(self.next_try, start) > 0:
            return False
        retry_ms = RETRY_FIRST_MS
        tries = 1
        driver = None
        while True:
            status = None
            try:
                # active(True) too: the ESP32 port raises OSError when the driver does not start (its
                # buffers come from the IDF heap, shared with TLS); escaping here it crashed the app
                self.wlan.active(True)
                self.wlan.connect(self.ssid, self._password)
            except OSError as e:  # ESP32: "Wifi Internal Error" in some driver states: a failed try
                driver = "Wi-Fi driver: %s" % e
                break
            while b.ticks_diff(b.ticks_ms(), start) < self.timeout_ms:
                if self.wlan.isconnected():
                    self.failures = 0
                    self.next_try = None
                    self.last_error = None
                    return True
                status = self.wlan.status()
                if status in FAILURES:
                    break
                if self.on_wait is not None:
                    self.on_wait()
                b.sleep_ms(POLL_MS)
            self.wlan.disconnect()
            left = self.timeout_ms - b.ticks_diff(b.ticks_ms(), start)
            if status not in FAILURES or left <= retry_ms:
                break
            while retry_ms > 0:  # the pause before the next try (up to half of timeout_ms), in 1 s steps
                if self.on_wait is not None:
                    self.on_wait()
                b.sleep_ms(min(retry_ms, 1000))
                retry_ms -= 1000
            retry_ms = RETRY_FIRST_MS << tries
            tries += 1
        self.last_error = driver or FAILURES.get(status, "not joined within %d s" % (self.timeout_ms // 1000))
        self.failures += 1
        backoff = RETRY_FIRST_MS << min(self.failures + 2, 20)
        self.next_try = b.ticks_add(b.ticks_ms(), min(backoff, self.backoff_max_ms))
        return False


def ntp_request():
    """A client request: LI 0, version 4, mode 3 (client)."""
    pkt = bytearray(48)
    pkt[0] = 0x23
    return pkt


def parse_ntp(pkt):
    """Unix milliseconds of the server's transmit timestamp; ValueError for a reply not to trust."""
    if len(pkt) < 48:
        raise ValueError("NTP reply too short")
    if pkt[0] & 7 not in (4, 5):
        raise ValueError("NTP reply is not from a server")
    if pkt[1] == 0 or pkt[1] > 15 or pkt[0] >> 6 == 3:  # stratum 16 or leap indicator 3: no time source
        raise ValueError("NTP server sent kiss-o'-death (stratum 0) or is unsynchronized: try another ntp.host")
    secs = (pkt[40] << 24) | (pkt[41] << 16) | (pkt[42] << 8) | pkt[43]
    frac = (pkt[44] << 24) | (pkt[45] << 16) | (pkt[46] << 8) | pkt[47]
    if secs == 0:
        raise ValueError("NTP server has no time yet")
    if secs < NTP_ERA1_BELOW:
        if secs >= NTP_ERA1_END:
            raise ValueError("NTP reply is before 2025 or after 2049: not a time to trust")
        secs += 0x100000000
    return (secs - NTP_DELTA_S) * 1000 + (frac * 1000 >> 32)


def ntp_time_ms(host, board, timeout_ms=2000, port=NTP_PORT):
    """True UTC in Unix milliseconds from an NTP server (half the round trip added); OSError/ValueError."""
    import socket
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout_ms / 1000)
        sent = board.ticks_ms()
        s.sendto(ntp_request(), addr)
        pkt = s.recv(48)
        rtt = board.ticks_diff(board.ticks_ms(), sent)
    finally:
        s.close()
    return parse_ntp(pkt) + rtt // 2


def ntp_sync(board, host, timeout_ms=2000, port=NTP_PORT):
    """Set the board's clock from NTP; True on success, False (never an exception) on any failure."""
    try:
        ms = ntp_time_ms(host, board, timeout_ms, port)
    except (OSError, ValueError, IndexError):
        return False
    board.set_unix_ms(ms)
    return True
