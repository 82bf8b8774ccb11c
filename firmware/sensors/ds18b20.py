"""DS18B20 temperature sensor on a 1-Wire bus (the bus object of MicroPython's onewire module).

The temperature register is a signed 16-bit count of 1/16 degC (12-bit resolution); every scratchpad
is checked with the Dallas/Maxim CRC-8, so a noisy line gives an error instead of a wrong value.
"""

from firmware.sensors import SensorError

SKIP_ROM = 0xCC
CONVERT_T = 0x44
READ_SCRATCHPAD = 0xBE
CONVERSION_LIMIT_MS = 1000  # 750 ms at 12 bits, with margin
POLL_MS = 10


def crc8(data):
    """Dallas/Maxim 1-Wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected); 0 over data + its CRC."""
    crc = 0
    for b in data:
        for _ in range(8):
            mix = (crc ^ b) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            b >>= 1
    return crc


def temperature_c(lsb, msb):
    """degC of the two temperature register bytes (signed, 1/16 degC per count)."""
    raw = (msb << 8) | lsb
    if raw & 0x8000:
        raw -= 0x10000
    return raw / 16


class DS18B20:
    """One DS18B20: rom is its 8-byte ROM code (bytes or 16 hex digits), or None when alone on the bus."""

    def __init__(self, bus, rom=None, sleep_ms=None):
        if isinstance(rom, str):
            import binascii
            rom = binascii.unhexlify(rom)
        self.bus = bus
        self.rom = rom
        self.sleep_ms = sleep_ms
        self.buf = bytearray(9)
        self.values = {"temperature": None}

    def _address(self):
        if not self.bus.reset():
            raise SensorError("DS18B20: no presence pulse on the 1-Wire bus: check wiring, power and the 4.7k pull-up")
        if self.rom is None:
            self.bus.writebyte(SKIP_ROM)
        else:
            self.bus.select_rom(self.rom)

    def read(self):
        self._address()
        self.bus.writebyte(CONVERT_T)
        for _ in range(CONVERSION_LIMIT_MS // POLL_MS):
            if self.bus.readbit():
                break
            if self.sleep_ms:
                self.sleep_ms(POLL_MS)
        else:
            raise SensorError("DS18B20: conversion did not finish within %d ms: check the power (parasite power "
                              "needs a strong pull-up)" % CONVERSION_LIMIT_MS)
        self._address()
        self.bus.writebyte(READ_SCRATCHPAD)
        buf = self.buf
        self.bus.readinto(buf)
        got = crc8(memoryview(buf)[:8])
        if got != buf[8]:
            raise SensorError("DS18B20: scratchpad CRC mismatch (read 0x%02x, computed 0x%02x): check the "
                              "4.7k pull-up and the cable length" % (buf[8], got))
        # The configuration byte reads 0 R1 R0 1 1 1 1 1 on every DS18B20: an all-zero scratchpad (a line
        # held low) passes the CRC and read as 0.0 C, and a DS18S20 (1/2 C counts) read 8 times too high.
        if buf[4] & 0x9F != 0x1F:
            raise SensorError("DS18B20: the scratchpad is not a DS18B20's (configuration byte 0x%02x): check the "
                              "data line, and that the part is a DS18B20 (a DS18S20 reads differently)" % buf[4])
        # 85.0 C with reserved byte 6 still at its power-up 0x0C: the temperature register's power-on
        # value, the sensor reset before its conversion finished (a converted 85.0 C leaves 0x10 there)
        if buf[0] == 0x50 and buf[1] == 0x05 and buf[6] == 0x0C:
            raise SensorError("DS18B20: read its power-on value (85 C): the conversion did not run; check the "
                              "power (parasite power needs a strong pull-up)")
        # below 12-bit resolution (R1 R0) the lowest bits are undefined
        res = buf[4] >> 5 & 3
        self.values["temperature"] = temperature_c(buf[0] & (0xFF << (3 - res)) & 0xFF, buf[1])
        return self.values
