# A table of bad sensor entries in config.json, each with the message it must give: the field, then
# the fix (both runtimes). Cases are built one at a time to stay small on the 64K heap; the table of
# other settings and of secrets.json is in test_fw_config_settings.py.
import gc

from test_fw_cfgbase import changed, full, minimal

import dualtest
from firmware import config
from mindconnect.errors import ConfigError

M, F = minimal, full
IO = "use one of 4, 13, 14, 16-19, 21-23, 25-27, 32, 33"

BAD = (
    (M, (("sensors", []),), "sensors: no sensors configured; add at least one (type sim works on any board)"),
    (M, (("sensors.0.pin", 35),), "sensors[0].pin: 35 is input-only on ESP32 and this sensor must drive its line; "
     + IO),
    (M, (("sensors.0.pin", 40),), "sensors[0].pin: 40 is not a GPIO of the ESP32; " + IO),
    (M, (("sensors.0.pin", 7),), "sensors[0].pin: 7 is wired to the SPI flash on ESP32 modules; " + IO),
    (M, (("sensors.0.pin", 1),), "sensors[0].pin: 1 is the USB serial port (UART0) used by the REPL; " + IO),
    (M, (("sensors.0.pin", "4"),), "sensors[0].pin: '4' is not a whole number; write it without quotes"),
    (M, (("sensors.0.pin", None),), "sensors[0].pin: missing; it is required"),
    (F, (("sensors.4.pin", 25),), "sensors[4].pin: 25 is not an ADC1 pin (ADC2 cannot be read while Wi-Fi is on); "
     "use one of 32-39"),
    (F, (("sensors.4.pin", 13),), "sensors[4].pin: GPIO 13 is already used by sensors[2].pin; give each sensor its "
     "own pin (only 1-Wire and I2C sensors may share a bus)"),
    (F, (("sensors.1.pin", 21),), "sensors[1].pin: GPIO 21 is already used by sensors[0].i2c.sda"),
    (F, (("sensors.4.atten_db", 3),), "sensors[4].atten_db: 3 is not an attenuation of the ESP32 ADC; use 0, 2.5, "
     "6 or 11"),
    (F, (("sensors.4.cal", [[1, 2]]),), "sensors[4].cal: must be two measured points [[raw, mV], [raw, mV]]"),
    (F, (("sensors.0.address", 0x40),), "sensors[0].address: must be 0x76 (SDO to GND) or 0x77 (SDO to VCC)"),
    (F, (("sensors.0.i2c", {"sda": 21, "scl": 21}),), "sensors[0].i2c: sda and scl are the same pin"),
    (F, (("sensors.2.rom", "28ff"),), "sensors[2].rom: must be the 8-byte ROM code as 16 hex digits"),
    # two DS18B20 on one pin: one without its ROM code is addressed with Skip ROM, and both answer at once
    (F, (("sensors.3.pin", 13),), "sensors[3].rom: missing; sensors[2] is a DS18B20 on GPIO 13 too, and"
     " sensors sharing a pin are told apart by their ROM codes: give each its 16 hex digits (docs/FIRMWARE.md"),
    (F, (("sensors.3.pin", 13), ("sensors.3.rom", "28aa0c2e0b000057"), ("sensors.2.rom", None)),
     "sensors[2].rom: missing; sensors[3] is a DS18B20 on GPIO 13 too"),
    (M, (("sensors.0.type", "dht33"),), "sensors[0].type: 'dht33' is not allowed; use one of"),
    (M, (("sensors.0.points", []),), "sensors[0].points: no data points; add at least one"),
    (M, (("sensors.0.points.1.id", "t1"),), "sensors[0].points[1].id: 't1' is used twice; data point ids must be "
     "unique (the other is sensors[0].points[0])"),
    (M, (("sensors.0.points.0.id", "x" * 37),), "sensors[0].points[0].id: '" + "x" * 37
     + "' must have 1..36 characters"),
    (M, (("sensors.0.points.0.type", "FLOAT"),), "sensors[0].points[0].type: 'FLOAT' is not allowed; use one of "
     "INT, LONG, DOUBLE, BOOLEAN, STRING"),
    (M, (("sensors.0.points.0.type", "BOOLEAN"),), "sensors[0].points[0].type: BOOLEAN cannot hold a temperature "
     "reading; use DOUBLE (or INT/LONG to round)"),
    (M, (("sensors.0.points.0.quantity", "pressure"),), "sensors[0].points[0].quantity: a dht22 measures "
     "temperature and humidity, not 'pressure'"),
    (M, (("sensors.0.pins", 4),), "sensors[0].pins: unknown setting; did you mean pin?"),
)


def test_bad_configs_name_the_field_and_the_fix():
    for i in range(len(BAD)):
        base, changes, want = BAD[i]
        e = dualtest.raises(ConfigError, config.validate, changed(base, changes))
        assert str(e).startswith(want), "case %d: got %r, want %r" % (i, str(e), want)
        gc.collect()
