"""Sensor drivers with the bus passed in, and the table of what each kind of sensor measures.

Every driver has read() -> {quantity: value}; the dict is reused between reads (copy it to keep it).
Drivers raise SensorError with what to check; nothing here touches hardware at import time.
"""


class SensorError(Exception):
    """A sensor did not answer or answered nonsense (checksum, CRC, chip id): check wiring and power."""


_T = "temperature"  # one str object for the table (each literal of 11+ characters would be one more)
# kind -> (quantities it measures, first one is the default for a data point without "quantity")
QUANTITIES = {
    "internal_temp": (_T,),
    "adc": ("voltage",),
    "dht11": (_T, "humidity"),
    "dht22": (_T, "humidity"),
    "bme280": (_T, "pressure", "humidity"),
    "ds18b20": (_T,),
    "sim": (_T, "humidity", "pressure", "voltage"),
}
del _T


def build(scfg, board):
    """The driver for one validated sensor entry of config.json (a dict), on this board.

    On a simulated board every sensor becomes a simulated one measuring the same quantities, so a
    real config.json runs unchanged on the desktop.
    """
    kind = scfg["type"]
    quantities = QUANTITIES[kind]
    if getattr(board, "simulated", False) or kind == "sim":
        from firmware.sensors.sim import SimSensor
        return SimSensor(board.signals(), quantities, board.unix_ms, scfg.get("seed", 0))
    if kind == "internal_temp":
        from firmware.sensors.internal_temp import InternalTemp
        unit, source = board.internal_temp()
        return InternalTemp(source, unit, scfg.get("offset_c", 0))
    if kind == "adc":
        from firmware.sensors.adc import AdcVoltage
        return AdcVoltage(board.adc(scfg["pin"], scfg["atten_db"]), scfg["atten_db"], scfg["scale"],
                          scfg["offset_v"], scfg["samples"], scfg.get("cal"))
    if kind in ("dht11", "dht22"):
        from firmware.sensors.dht import DHT
        return DHT(board.dht(scfg["pin"]), kind)
    if kind == "bme280":
        from firmware.sensors.bme280 import BME280
        return BME280(board.i2c(scfg["i2c"]), scfg["address"], board.sleep_ms)
    from firmware.sensors.ds18b20 import DS18B20
    return DS18B20(board.onewire(scfg["pin"]), scfg.get("rom"), board.sleep_ms)
