"""DHT11 and DHT22 (AM2302) humidity/temperature sensors.

The bus is anything with readinto(buf) that fills the 5 bytes the sensor sends (the ESP32 board wraps
the port's dht_readinto, which does the microsecond timing in C). Decoding and the checksum are here.
"""

from firmware.sensors import SensorError


class DHT:
    def __init__(self, bus, kind="dht22"):
        if kind not in ("dht11", "dht22"):
            raise ValueError("kind must be dht11 or dht22")
        self.bus = bus
        self.kind = kind
        self.buf = bytearray(5)
        self.values = {"temperature": None, "humidity": None}

    def read(self):
        b = self.buf
        try:
            self.bus.readinto(b)
        except OSError:
            raise SensorError("%s: no answer: check the data pin, the pull-up and that reads are >= 2 s apart"
                              % self.kind) from None
        total = (b[0] + b[1] + b[2] + b[3]) & 0xFF
        if total != b[4]:
            raise SensorError("%s: checksum mismatch (got 0x%02x, computed 0x%02x): check the cable and the "
                              "pull-up" % (self.kind, b[4], total))
        v = self.values
        if self.kind == "dht22":
            # 16-bit big-endian tenths; bit 15 of the temperature is a sign bit (not two's complement)
            v["humidity"] = ((b[0] << 8) | b[1]) / 10
            t = ((b[2] & 0x7F) << 8) | b[3]
            v["temperature"] = (-t if b[2] & 0x80 else t) / 10
        else:
            # integral byte + decimal byte (tenths); newer DHT11 parts flag negative temperatures in bit 7
            v["humidity"] = b[0] + b[1] / 10
            t = b[2] * 10 + (b[3] & 0x7F)
            v["temperature"] = (-t if b[3] & 0x80 else t) / 10
        return v
