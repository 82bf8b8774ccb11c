"""A voltage on an ADC pin: attenuation, calibration, averaging and a divider scale.

Calibration, best first: a two-point table from the user's own measurement ("cal": [[raw, mV], [raw, mV]]),
else the chip's factory calibration (ADC.read_uv, eFuse based), else the nominal full scale of the
attenuation. All arithmetic is in integer microvolts; only the result is a float.
"""

# nominal input (mV) that reads 4095 at each attenuation (MicroPython's ESP32 quick reference); the
# response is not linear near both ends, so prefer read_uv or a two-point calibration
FULL_SCALE_MV = {0: 1000, 2.5: 1340, 6: 2000, 11: 3600}
MAX_RAW = 4095


class AdcVoltage:
    def __init__(self, adc, atten_db=11, scale=1, offset_v=0, samples=4, cal=None):
        if atten_db not in FULL_SCALE_MV:
            raise ValueError("atten_db must be one of 0, 2.5, 6, 11")
        self.adc = adc
        self.full_scale_uv = FULL_SCALE_MV[atten_db] * 1000
        self.scale = scale
        self.offset_v = offset_v
        self.samples = max(1, int(samples))
        self.cal = cal
        self.values = {"voltage": None}

    def microvolts(self):
        """Averaged input voltage at the pin, in integer microvolts."""
        n = self.samples
        if self.cal is None and hasattr(self.adc, "read_uv"):
            total = 0
            for _ in range(n):
                total += self.adc.read_uv()
            return total // n
        total = 0
        for _ in range(n):
            total += self.adc.read()
        raw = total // n
        if self.cal is None:
            return raw * self.full_scale_uv // MAX_RAW
        (r1, mv1), (r2, mv2) = self.cal
        return (mv1 * 1000 * (r2 - raw) + mv2 * 1000 * (raw - r1)) // (r2 - r1)

    def read(self):
        self.values["voltage"] = self.microvolts() / 1000000 * self.scale + self.offset_v
        return self.values
