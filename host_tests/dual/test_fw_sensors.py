# Sensor drivers against fake buses fed with datasheet example values (both runtimes).
import struct

import dualtest
from firmware.sensors import SensorError, adc, bme280, dht, ds18b20, internal_temp

# ---- BME280: the BMP280/BME280 datasheet's example trimming values (t_fine 128422, 25.08 degC,
# 100653.27 Pa) plus humidity trimming values of the size real parts carry

T_CAL = (27504, 26435, -1000)
P_CAL = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
H_CAL = (75, 370, 0, 309, 50, 30)
ADC_T, ADC_P, ADC_H = 519888, 415148, 30000


def double_formulas(adc_t, adc_p, adc_h):
    """The datasheet's floating-point compensation: an independent check of the driver's integer code."""
    t1, t2, t3 = T_CAL
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = P_CAL
    h1, h2, h3, h4, h5, h6 = H_CAL
    v1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
    v2 = (adc_t / 131072.0 - t1 / 8192.0) * (adc_t / 131072.0 - t1 / 8192.0) * t3
    t_fine = v1 + v2
    v1 = t_fine / 2.0 - 64000.0
    v2 = v1 * v1 * p6 / 32768.0
    v2 = v2 + v1 * p5 * 2.0
    v2 = v2 / 4.0 + p4 * 65536.0
    v1 = (p3 * v1 * v1 / 524288.0 + p2 * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * p1
    p = 1048576.0 - adc_p
    p = (p - v2 / 4096.0) * 6250.0 / v1
    p = p + (p9 * p * p / 2147483648.0 + p * p8 / 32768.0 + p7) / 16.0
    h = t_fine - 76800.0
    h = (adc_h - (h4 * 64.0 + h5 / 16384.0 * h)) * \
        (h2 / 65536.0 * (1.0 + h6 / 67108864.0 * h * (1.0 + h3 / 67108864.0 * h)))
    h = h * (1.0 - h1 * h / 524288.0)
    return t_fine / 5120.0, p, min(100.0, max(0.0, h))


class FakeI2C:
    """A BME280 register file: chip id, calibration blocks, data registers; busy for `busy` status polls."""

    def __init__(self, adc_t=ADC_T, adc_p=ADC_P, adc_h=ADC_H, chip=0x60, busy=2, address=0x76):
        self.address = address
        self.regs = bytearray(256)
        self.regs[0xD0] = chip
        tp = struct.pack("<HhhHhhhhhhhh", *(T_CAL + P_CAL)) + bytes((0, H_CAL[0]))
        self.regs[0x88:0x88 + 26] = tp
        h1, h2, h3, h4, h5, h6 = H_CAL
        hb = struct.pack("<hB", h2, h3) + bytes((h4 >> 4, ((h5 & 0xF) << 4) | (h4 & 0xF), (h5 >> 4) & 0xFF,
                                                 h6 & 0xFF))
        self.regs[0xE1:0xE1 + 7] = hb
        self.regs[0xF7:0xFF] = bytes((adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
                                      adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4,
                                      adc_h >> 8, adc_h & 0xFF))
        self.busy = busy
        self.writes = []

    def readfrom_mem_into(self, addr, reg, buf):
        if addr != self.address:
            raise OSError(19)  # ENODEV, as machine.I2C says when nobody acknowledges
        if reg == 0xF3:
            buf[0] = 0x08 if self.busy > 0 else 0
            self.busy -= 1
            return
        buf[:] = self.regs[reg:reg + len(buf)]

    def writeto_mem(self, addr, reg, data):
        self.writes.append((reg, bytes(data)))


def test_bme280_datasheet_example():
    bus = FakeI2C()
    sleeps = []
    v = bme280.BME280(bus, 0x76, sleeps.append).read()
    t, p, h = double_formulas(ADC_T, ADC_P, ADC_H)
    # the datasheet's table: 25.08 degC and 100653.27 Pa for these trimming and raw values
    assert abs(t - 25.08) < 0.005 and abs(p - 100653.27) < 0.01
    assert v["temperature"] == 25.08
    assert abs(v["pressure"] - p) < 0.05
    assert abs(v["humidity"] - h) < 0.01, (v["humidity"], h)
    # forced mode, ctrl_hum written before ctrl_meas, and the status polled until the measurement finished
    assert bus.writes == [(0xF2, b"\x01"), (0xF4, bytes((0x25,)))]
    assert sleeps == [2, 2]


def test_bme280_against_double_formulas_over_the_range():
    for adc_t, adc_p, adc_h in ((400000, 300000, 20000), (519888, 415148, 35000), (600000, 500000, 40000),
                                (450000, 350000, 10000)):
        v = bme280.BME280(FakeI2C(adc_t, adc_p, adc_h, busy=0)).read()
        t, p, h = double_formulas(adc_t, adc_p, adc_h)
        assert abs(v["temperature"] - t) < 0.01, (v, t)
        assert abs(v["pressure"] - p) < 0.1, (v, p)
        assert abs(v["humidity"] - h) < 0.02, (v, h)


def test_bme280_clear_errors():
    e = dualtest.raises(SensorError, bme280.BME280(FakeI2C(address=0x77), 0x76).read)
    assert "no answer at I2C address 0x76" in str(e) and "0x77 with SDO to VCC" in str(e)
    e = dualtest.raises(SensorError, bme280.BME280(FakeI2C(chip=0x58)).read)
    assert "chip id 0x58" in str(e) and "BMP280" in str(e)
    e = dualtest.raises(SensorError, bme280.BME280(FakeI2C(busy=1000)).read)
    assert "did not finish" in str(e)


def test_bme280_skipped_values_are_left_out_not_sent():
    # the reset values 0x80000 (pressure) and 0x8000 (humidity) mean "skipped": they were compensated
    # into numbers and sent as readings
    v = bme280.BME280(FakeI2C(adc_p=0x80000, busy=0)).read()
    assert v["pressure"] is None and v["temperature"] == 25.08 and v["humidity"] is not None
    v = bme280.BME280(FakeI2C(adc_h=0x8000, busy=0)).read()
    assert v["humidity"] is None and v["temperature"] == 25.08 and v["pressure"] is not None


def test_bme280_bad_calibration_and_a_sensor_that_comes_back():
    bus = FakeI2C(busy=0)
    good = bytes(bus.regs)
    bus.regs[0x88:0x88 + 26] = bytes(26)  # trimming read while the NVM was still being copied
    s = bme280.BME280(bus)
    e = dualtest.raises(SensorError, s.read)
    assert "calibration" in str(e)
    bus.regs[:] = good
    assert s.read()["temperature"] == 25.08  # tried again at the next read

    class Gone(FakeI2C):
        def writeto_mem(self, addr, reg, data):
            raise OSError(116)  # ETIMEDOUT: nobody on the bus any more
    gone = Gone(busy=0)
    gone.regs[:] = bus.regs
    s.bus = gone
    e = dualtest.raises(SensorError, s.read)
    assert "I2C error at 0x76" in str(e)
    # a replacement part with other trimming answers now: its own calibration is read, not the old one's
    other = FakeI2C(busy=0)
    struct.pack_into("<H", other.regs, 0x88, T_CAL[0] + 1000)
    s.bus = other
    want = bme280.BME280(other).read()["temperature"]
    assert want != 25.08 and s.read()["temperature"] == want


# ---- DS18B20: the datasheet's temperature/data relationship table (12-bit)

DS_TABLE = ((0x07D0, 125.0), (0x0550, 85.0), (0x0191, 25.0625), (0x00A2, 10.125), (0x0008, 0.5),
            (0x0000, 0.0), (0xFFF8, -0.5), (0xFF5E, -10.125), (0xFE6F, -25.0625), (0xFC90, -55.0))


class FakeOneWire:
    """One DS18B20 on a 1-Wire bus: records commands, answers the scratchpad, busy for `busy` read slots."""

    def __init__(self, raw, busy=3, present=True, corrupt=False, pad=None):
        # after a conversion reserved byte 6 holds 0x10 - (LSB & 0x0F); 0x0C is its power-up value
        pad = bytearray(pad or (raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x10 - (raw & 0x0F), 0x10, 0))
        pad[8] = ds18b20.crc8(pad[:8])
        if corrupt:
            pad[1] ^= 0x04
        self.pad = pad
        self.busy = busy
        self.present = present
        self.log = []

    def reset(self):
        self.log.append("reset")
        return self.present

    def writebyte(self, b):
        self.log.append(b)

    def select_rom(self, rom):
        self.log.append(("rom", bytes(rom)))

    def readbit(self):
        self.busy -= 1
        return 1 if self.busy < 0 else 0

    def readinto(self, buf):
        buf[:] = self.pad


def test_ds18b20_crc8_known_vector():
    # Maxim application note 27: ROM 02 1C B8 01 00 00 00 has CRC A2
    assert ds18b20.crc8(b"\x02\x1c\xb8\x01\x00\x00\x00") == 0xA2
    assert ds18b20.crc8(b"\x02\x1c\xb8\x01\x00\x00\x00\xa2") == 0


def test_ds18b20_datasheet_table():
    for raw, want in DS_TABLE:
        assert ds18b20.temperature_c(raw & 0xFF, raw >> 8) == want, (hex(raw), want)
        bus = FakeOneWire(raw)
        sleeps = []
        assert ds18b20.DS18B20(bus, None, sleeps.append).read() == {"temperature": want}
        assert bus.log == ["reset", 0xCC, 0x44, "reset", 0xCC, 0xBE]
        assert sleeps == [10, 10, 10]


def test_ds18b20_rom_and_errors():
    bus = FakeOneWire(0x0191, busy=0)
    ds18b20.DS18B20(bus, "28ff4a1b93160302").read()
    assert bus.log[1] == ("rom", b"\x28\xff\x4a\x1b\x93\x16\x03\x02")
    e = dualtest.raises(SensorError, ds18b20.DS18B20(FakeOneWire(0x0191, corrupt=True)).read)
    assert "CRC mismatch" in str(e) and "pull-up" in str(e)
    e = dualtest.raises(SensorError, ds18b20.DS18B20(FakeOneWire(0x0191, present=False)).read)
    assert "no presence pulse" in str(e)
    e = dualtest.raises(SensorError, ds18b20.DS18B20(FakeOneWire(0x0191, busy=10000)).read)
    assert "did not finish" in str(e)


def test_ds18b20_scratchpads_that_pass_the_crc_but_are_no_temperature():
    for pad, why in (((0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0), "power-on value (85 C)"),
                     ((0,) * 9, "not a DS18B20's"),  # a line held low: CRC 0 over zeros
                     ((0x32, 0x00, 0x4B, 0x46, 0xFF, 0xFF, 0x0C, 0x10, 0), "not a DS18B20's")):  # DS18S20 25 C
        pad = bytearray(pad)
        pad[8] = ds18b20.crc8(pad[:8])
        s = ds18b20.DS18B20(FakeOneWire(0, busy=0, pad=pad))
        e = dualtest.raises(SensorError, s.read)
        assert why in str(e), (pad, str(e))
        assert s.values == {"temperature": None}
    # a real 85.0 C conversion is a reading (byte 6 is 0x10 after it)
    assert ds18b20.DS18B20(FakeOneWire(0x0550, busy=0)).read() == {"temperature": 85.0}
    # 9-bit resolution (configuration 0x1F): bits 2..0 are undefined, not part of the value
    pad = bytearray((0x97, 0x01, 0x4B, 0x46, 0x1F, 0xFF, 0x09, 0x10, 0))
    pad[8] = ds18b20.crc8(pad[:8])
    assert ds18b20.DS18B20(FakeOneWire(0, busy=0, pad=pad)).read() == {"temperature": 25.0}


# ---- DHT11 / DHT22: the datasheets' examples

class FakeDht:
    def __init__(self, data):
        self.data = data

    def readinto(self, buf):
        if self.data is None:
            raise OSError(110)  # ETIMEDOUT: the port's dht_readinto when nothing answers
        buf[:] = self.data


def _frame(b0, b1, b2, b3):
    return bytes((b0, b1, b2, b3, (b0 + b1 + b2 + b3) & 0xFF))


def test_dht22_datasheet_example():
    # humidity 0x028C = 652 -> 65.2 %RH; temperature 0x015F = 351 -> 35.1 degC; checksum 0xEE
    frame = bytes((0x02, 0x8C, 0x01, 0x5F, 0xEE))
    assert _frame(0x02, 0x8C, 0x01, 0x5F) == frame
    v = dht.DHT(FakeDht(frame), "dht22").read()
    assert v == {"humidity": 65.2, "temperature": 35.1}
    # bit 15 set: -10.1 degC (0x8065)
    v = dht.DHT(FakeDht(_frame(0x02, 0x8C, 0x80, 0x65)), "dht22").read()
    assert v["temperature"] == -10.1


def test_dht11_datasheet_example():
    # 0x35 0x00 0x18 0x00 0x4D: 53 %RH, 24 degC
    v = dht.DHT(FakeDht(bytes((0x35, 0x00, 0x18, 0x00, 0x4D))), "dht11").read()
    assert v == {"humidity": 53, "temperature": 24}
    v = dht.DHT(FakeDht(_frame(40, 5, 1, 0x83)), "dht11").read()
    assert v == {"humidity": 40.5, "temperature": -1.3}


def test_dht_errors():
    e = dualtest.raises(SensorError, dht.DHT(FakeDht(bytes((0x02, 0x8C, 0x01, 0x5F, 0xEF))), "dht22").read)
    assert "checksum mismatch (got 0xef, computed 0xee)" in str(e)
    e = dualtest.raises(SensorError, dht.DHT(FakeDht(None), "dht11").read)
    assert "dht11: no answer" in str(e)


def test_dht_frames_that_pass_the_checksum_but_are_no_reading():
    # each frame below has a right checksum, and each was passed on as a reading
    for kind, frame, why in (
            ("dht22", _frame(0, 0, 0, 0), "all zero bits"),  # a silent line: 0 %RH at 0 C
            ("dht22", _frame(0x35, 0x00, 0x18, 0x00), "outside"),  # a DHT11 read as a DHT22: 1356.8 %RH
            ("dht22", _frame(0x03, 0xE9, 0x00, 0xFA), "outside"),  # 100.1 %RH
            ("dht22", _frame(0x02, 0x8C, 0x03, 0x21), "outside"),  # 80.1 C
            ("dht22", _frame(0x02, 0x8C, 0x81, 0x91), "outside"),  # -40.1 C
            ("dht11", _frame(0x02, 0x8C, 0x01, 0x5F), "outside"),  # a DHT22 read as a DHT11: decimal bytes over 9
            ("dht11", _frame(101, 0, 20, 0), "outside"),
            ("dht11", _frame(40, 0, 61, 0), "outside"),
            ("dht11", _frame(0, 0, 0, 0), "all zero bits")):
        d = dht.DHT(FakeDht(frame), kind)
        e = dualtest.raises(SensorError, d.read)
        assert why in str(e) and kind in str(e), (kind, frame, str(e))
        assert d.values == {"temperature": None, "humidity": None}  # nothing half-updated
    # the datasheets' ends are readings
    assert dht.DHT(FakeDht(_frame(0x03, 0xE8, 0x03, 0x20)), "dht22").read() == {"humidity": 100, "temperature": 80}
    assert dht.DHT(FakeDht(_frame(0x00, 0x00, 0x81, 0x90)), "dht22").read() == {"humidity": 0, "temperature": -40}
    assert dht.DHT(FakeDht(_frame(90, 0, 0, 0x89)), "dht11").read() == {"humidity": 90, "temperature": -0.9}


# ---- internal temperature and ADC

def test_internal_temp_fahrenheit_and_offset():
    assert internal_temp.InternalTemp(lambda: 212, "F").read() == {"temperature": 100}
    v = internal_temp.InternalTemp(lambda: 131, "F", -20).read()["temperature"]
    assert abs(v - 35) < 1e-9
    assert internal_temp.InternalTemp(lambda: 41.5, "C", -1.5).read() == {"temperature": 40}


def test_a_classic_esp32_without_the_sensor_gives_no_reading():
    # later classic ESP32 revisions have no temperature sensor, and esp32.raw_temperature() returns 128
    # (degF, 53.3 degC) for ever: that was sent as the node's temperature
    e = dualtest.raises(SensorError, internal_temp.InternalTemp(lambda: 128, "F").read)
    assert "no temperature sensor" in str(e)
    assert internal_temp.InternalTemp(lambda: 127, "F").read()["temperature"] < 53.3
    assert internal_temp.InternalTemp(lambda: 128, "C").read() == {"temperature": 128}  # mcu_temperature: degC


class FakeAdc:
    def __init__(self, counts=(), uvs=()):
        self.counts = list(counts)
        self.uvs = list(uvs)

    def read(self):
        return self.counts.pop(0)

    def read_uv(self):
        return self.uvs.pop(0)


class CountsOnly:
    def __init__(self, counts):
        self.counts = list(counts)

    def read(self):
        return self.counts.pop(0)


def test_adc_factory_calibration_divider_and_average():
    a = adc.AdcVoltage(FakeAdc(uvs=(1650000, 1650400, 1649600, 1650000)), 11, scale=2, offset_v=0.01, samples=4)
    assert abs(a.read()["voltage"] - 3.31) < 1e-9


def test_adc_nominal_scale_without_calibration():
    a = adc.AdcVoltage(CountsOnly((4095, 4095)), 11, samples=2)
    assert a.microvolts() == 3600000
    a = adc.AdcVoltage(CountsOnly((2048,)), 0, samples=1)
    assert a.microvolts() == 2048 * 1000000 // 4095


def test_adc_two_point_calibration_overrides_factory():
    # the user measured 350 mV at count 400 and 2950 mV at count 3700: count 2050 is halfway, 1650 mV
    a = adc.AdcVoltage(FakeAdc(counts=(2050,)), 11, samples=1, cal=[[400, 350], [3700, 2950]])
    assert a.microvolts() == 1650000


def test_adc_refuses_unknown_attenuation():
    e = dualtest.raises(ValueError, adc.AdcVoltage, FakeAdc(), 3)
    assert "0, 2.5, 6, 11" in str(e)
