# MicroPython manifest: freezes lib/mindconnect and firmware/ into a custom ESP32 image, so the code
# runs from flash and leaves the heap to data. Build from the MicroPython tree:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/repo/firmware/manifest.py
# boot.py, main.py, config.json, secrets.json and the CA file stay on the board's filesystem.
# include/package are provided by MicroPython's manifest tool, hence the noqa.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821 - the port's usual modules (onewire, dht, network...)
package("mindconnect", base_path="../lib")  # noqa: F821
package("firmware", base_path="..")  # noqa: F821
