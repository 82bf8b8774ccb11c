"""The ESP32's own temperature sensor.

Classic ESP32 reports uncalibrated degF (esp32.raw_temperature); S2/S3/C3 report degC
(esp32.mcu_temperature). The die runs warmer than the air around it: offset_c calibrates that away.
Later classic ESP32 revisions have no sensor, and raw_temperature() then returns 128 (degF) for ever:
exactly 128 degF is no reading (a die truly at 53.3 degC loses that one value, never a wrong value kept).
"""

from firmware.sensors import SensorError


class InternalTemp:
    def __init__(self, source, unit="F", offset_c=0):
        if unit not in ("F", "C"):
            raise ValueError("unit must be F or C")
        self.source = source
        self.unit = unit
        self.offset_c = offset_c
        self.values = {"temperature": None}

    def read(self):
        raw = self.source()
        if raw == 128 and self.unit == "F":
            raise SensorError("internal_temp: 128 F, what a chip with no temperature sensor returns")
        c = (raw - 32) * 5 / 9 if self.unit == "F" else raw
        self.values["temperature"] = c + self.offset_c
        return self.values
