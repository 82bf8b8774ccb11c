"""The simulated board's parts that few runs need, imported when first asked for: a pin (the safe-mode
check at boot) and Wi-Fi (a config with a "wifi" section). The rest of the board stays smaller."""

from firmware.boards.sim import STAT_CONNECTING, STAT_GOT_IP, STAT_IDLE, STAT_NO_AP_FOUND


class SimPin:
    def __init__(self, state, n):
        self.state = state
        self.n = n

    def value(self):
        """0 while the pin is held low (like a pressed button with a pull-up), else 1."""
        return 0 if self.n in self.state.held_pins else 1


class SimWlan:
    """network.WLAN(STA_IF) as far as net.py uses it; joins after state.wifi_connect_ms if the AP is up."""

    def __init__(self, board, state):
        self.board = board
        self.state = state
        self.started = None
        self.on = False

    def active(self, on=None):
        if on is not None:
            self.on = bool(on)
            if not on:
                self.started = None
        return self.on

    def connect(self, ssid, password=None):
        if not self.on:
            raise OSError("Wi-Fi Internal Error")  # what the ESP32 port says when the interface is off
        self.state.wifi_attempts += 1
        self.started = self.board.ticks_ms()

    def disconnect(self):
        self.started = None

    def status(self, param=None):
        if param == "rssi":
            if not self.isconnected():
                raise OSError("not connected")
            return self.state.wifi_rssi
        if self.started is None:
            return STAT_IDLE
        if self.board.ticks_diff(self.board.ticks_ms(), self.started) < self.state.wifi_connect_ms:
            return STAT_CONNECTING
        return STAT_GOT_IP if self.state.wifi_up else STAT_NO_AP_FOUND

    def isconnected(self):
        return self.status() == STAT_GOT_IP
