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
        if not (b[0] | b[1] | b[2] | b[3]):
            # all 40 bits read as 0 pass the checksum (0 == 0): a line that never went high, not 0 %RH at 0 C
            raise SensorError("%s: read all zero bits: check the data pin and the pull-up" % self.kind)
        if self.kind == "dht22":
            # 16-bit big-endian tenths; bit 15 of the temperature is a sign bit (not two's complement)
            h = ((b[0] << 8) | b[1]) / 10
            t = ((b[2] & 0x7F) << 8) | b[3]
            t = (-t if b[2] & 0x80 else t) / 10
            # AM2302 datasheet: 0-99.9 %RH, -40..80 C
            ok = h <= 100 and -40 <= t <= 80
        else:
            # integral byte + decimal byte (tenths); newer DHT11 parts flag negative temperatures in bit 7
            h = b[0] + b[1] / 10
            t = b[2] * 10 + (b[3] & 0x7F)
            t = (-t if b[3] & 0x80 else t) / 10
            # a decimal byte over 9 is not a DHT11's (a DHT22 read as one); newer parts: 5-95 %RH, -20..60 C
            ok = b[1] < 10 and b[3] & 0x7F < 10 and h <= 100 and -20 <= t <= 60
        if not ok:
            # the checksum only proves the bytes arrived; these bytes are not a reading of this kind
            raise SensorError("%s: %s %%RH and %s C are outside what it measures: check that the sensor type "
                              "(dht11 or dht22) is the one wired" % (self.kind, h, t))
        v = self.values
        v["humidity"] = h
        v["temperature"] = t
        return v
