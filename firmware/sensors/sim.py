"""A simulated sensor: the board's simulated signals, read at the board's clock."""


class SimSensor:
    """signals: an object with value(quantity, unix_ms, seed) (boards.sim.Signals)."""

    def __init__(self, signals, quantities, unix_ms, seed=0):
        self.signals = signals
        self.unix_ms = unix_ms
        self.seed = seed
        self.values = {}
        for q in quantities:
            self.values[q] = None

    def read(self):
        now = self.unix_ms()
        v = self.values
        for q in v:
            v[q] = self.signals.value(q, now, self.seed)
        return v
