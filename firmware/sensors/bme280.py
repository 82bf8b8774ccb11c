"""Bosch BME280 (temperature, pressure, humidity) over I2C, in forced mode.

The compensation is the datasheet's integer code (temperature and humidity in 32-bit fixed point,
pressure in 64-bit); Python ints do not overflow, and every shift the datasheet uses is arithmetic,
as Python's >> is. One measurement per read(): forced mode, so the sensor sleeps between samples.
"""

import struct

from firmware.sensors import SensorError

CHIP_ID = 0x60
REG_ID = 0xD0
REG_CALIB_TP = 0x88  # 26 bytes: T1..T3, P1..P9, (0xA0 unused), H1 at 0xA1
REG_CALIB_H = 0xE1  # 7 bytes: H2..H6
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_DATA = 0xF7  # 8 bytes: press[3], temp[3], hum[2]
OVERSAMPLING_X1 = 1
FORCED = 1
MEASURING = 0x08
POLL_MS = 2
MEASURE_LIMIT_MS = 100  # 1x/1x/1x needs about 10 ms


def calibration(tp, h):
    """The trimming parameters from the two calibration blocks (26 and 7 bytes) as a tuple."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9 = struct.unpack("<HhhHhhhhhhhh", tp[:24])
    h1 = tp[25]
    h2, h3 = struct.unpack("<hB", h[:3])
    h4 = (h[3] << 4) | (h[4] & 0x0F)
    h5 = (h[5] << 4) | (h[4] >> 4)
    if h4 & 0x800:
        h4 -= 0x1000
    if h5 & 0x800:
        h5 -= 0x1000
    h6 = h[6] - 256 if h[6] & 0x80 else h[6]
    return (t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6)


def _cdiv(a, b):
    """Integer division truncating toward zero, as C's / does (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def compensate(cal, adc_t, adc_p, adc_h):
    """(degC x100, Pa x256, %RH x1024) as ints from raw readings: the datasheet's fixed-point formulas."""
    t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6 = cal
    var1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
    var2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
    t_fine = var1 + var2
    temp = (t_fine * 5 + 128) >> 8

    var1 = t_fine - 128000
    var2 = var1 * var1 * p6
    var2 = var2 + ((var1 * p5) << 17)
    var2 = var2 + (p4 << 35)
    var1 = ((var1 * var1 * p3) >> 8) + ((var1 * p2) << 12)
    var1 = (((1 << 47) + var1) * p1) >> 33
    if var1 == 0:
        press = 0  # the datasheet's guard against division by zero (calibration all zero)
    else:
        p = 1048576 - adc_p
        p = _cdiv(((p << 31) - var2) * 3125, var1)
        var1 = (p9 * (p >> 13) * (p >> 13)) >> 25
        var2 = (p8 * p) >> 19
        press = ((p + var1 + var2) >> 8) + (p7 << 4)

    v = t_fine - 76800
    v = ((((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * \
        (((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    v = 0 if v < 0 else v
    v = 419430400 if v > 419430400 else v
    return temp, press, v >> 12


class BME280:
    """bus: a machine.I2C-like object (readfrom_mem_into, writeto_mem); address 0x76 or 0x77."""

    def __init__(self, bus, address=0x76, sleep_ms=None):
        self.bus = bus
        self.address = address
        self.sleep_ms = sleep_ms
        self.cal = None
        self.data = bytearray(8)
        self.one = bytearray(1)
        self.values = {"temperature": None, "pressure": None, "humidity": None}

    def _reg(self, reg):
        self.bus.readfrom_mem_into(self.address, reg, self.one)
        return self.one[0]

    def _setup(self):
        try:
            chip = self._reg(REG_ID)
        except OSError:
            raise SensorError("BME280: no answer at I2C address 0x%02x: check SDA/SCL, power and the address "
                              "(0x76 with SDO to GND, 0x77 with SDO to VCC)" % self.address) from None
        if chip != CHIP_ID:
            raise SensorError("BME280: chip id 0x%02x at 0x%02x is not a BME280 (0x60); a BMP280 (0x58) has "
                              "no humidity: use the right sensor type" % (chip, self.address))
        tp = bytearray(26)
        h = bytearray(7)
        self.bus.readfrom_mem_into(self.address, REG_CALIB_TP, tp)
        self.bus.readfrom_mem_into(self.address, REG_CALIB_H, h)
        cal = calibration(tp, h)
        # dig_T1 and dig_P1 are never 0 or 0xFFFF in a part's trimming: such blocks were read while the
        # chip copied its NVM after a power-up, or garbled on the bus; kept, they made every value wrong
        # until a reboot. Left unset, the next read tries again.
        if cal[0] in (0, 0xFFFF) or cal[3] in (0, 0xFFFF):
            raise SensorError("BME280: calibration data unreadable at 0x%02x: check the power supply and the "
                              "I2C wiring" % self.address)
        self.cal = cal

    def read(self):
        try:
            if self.cal is None:
                self._setup()
            return self._measure()
        except OSError as e:
            # the sensor went away (a loose cable, a power dip): when it answers again it may be another
            # part (a replaced sensor), so its chip id and calibration are read again first
            self.cal = None
            raise SensorError("BME280: I2C error at 0x%02x (%s): check SDA/SCL and power" % (self.address, e)) \
                from None

    def _measure(self):
        bus, a = self.bus, self.address
        # ctrl_hum only takes effect after a write to ctrl_meas, so it goes first
        bus.writeto_mem(a, REG_CTRL_HUM, bytes((OVERSAMPLING_X1,)))
        bus.writeto_mem(a, REG_CTRL_MEAS, bytes(((OVERSAMPLING_X1 << 5) | (OVERSAMPLING_X1 << 2) | FORCED,)))
        for _ in range(MEASURE_LIMIT_MS // POLL_MS):
            if not self._reg(REG_STATUS) & MEASURING:
                break
            if self.sleep_ms:
                self.sleep_ms(POLL_MS)
        else:
            raise SensorError("BME280: measurement did not finish within %d ms: check the power supply"
                              % MEASURE_LIMIT_MS)
        d = self.data
        bus.readfrom_mem_into(a, REG_DATA, d)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        if adc_t == 0x80000:
            raise SensorError("BME280: temperature not measured (reset value): check the power supply")
        t, p, h = compensate(self.cal, adc_t, adc_p, adc_h)
        v = self.values
        v["temperature"] = t / 100
        # 0x80000 and 0x8000 are the registers' reset values, "measurement skipped" (a sensor reset between
        # the settings and the measurement); p 0 is the datasheet's guard against dividing by zero. None:
        # that value is left out of the reading, the others are kept.
        v["pressure"] = None if adc_p == 0x80000 or p == 0 else p / 256
        v["humidity"] = None if adc_h == 0x8000 else h / 1024
        return v
