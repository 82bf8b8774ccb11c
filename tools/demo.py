"""`make demo`: a simulated node on this machine sending to the local mock hub.

Starts the mock hub, creates an agent and its onboarding key, prepares a board folder (config.json,
secrets.json, the hub's CA) and runs boot.py + main.py under the MicroPython unix port with the heap
cap, as a board would. Prints the dashboard URL and the node's log (a line per upload). Ctrl-C stops
everything; DEMO_SECONDS=N stops after N seconds. State lives in $DEMO_STATE (default ./demo-state):
a second run keeps the hub's data and the onboarded node.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tools import build
from tools.mockhub import MockHub
from tools.virtual_board import interpreter

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mpy"
# Smallest of 96K/128K/160K/256K the full app runs in on the 64-bit unix port today (docs/APP.md).
HEAPSIZE = "256K"
CONFIG = {
    "board": "sim",
    "safe_pin": None,
    "sensors": [
        {"type": "bme280", "name": "hall", "points": [
            {"id": "t", "name": "Temperature", "unit": "°C"},
            {"id": "rh", "name": "Humidity", "quantity": "humidity", "unit": "%"},
            {"id": "p", "name": "Pressure", "quantity": "pressure", "unit": "Pa"}]},
        {"type": "adc", "pin": 35, "name": "battery", "points": [{"id": "vbat", "unit": "V"}]},
    ],
    "sample_s": 2,
    "upload_s": 10,
    "rules": [{"point": "t", "above": 22, "hysteresis": 0.5, "severity": 2}],
}


def prepare_board(flash, hub):
    """The board's flash: config, CA, and (first run only) a new agent's onboarding key."""
    flash.mkdir(parents=True, exist_ok=True)
    (flash / "config.json").write_text(json.dumps(CONFIG, indent=1))
    (flash / "ca.der").write_bytes(hub.ca_der)
    if not (flash / "agent").is_dir() or not any((flash / "agent").iterdir()):
        created = hub.create_agent(name="demo-node")
        (flash / "secrets.json").write_text(json.dumps({"onboarding_key": created["onboarding_key"]}))
        return created["client_id"]
    return None


def relay(stream, say):
    for line in iter(stream.readline, b""):
        say("node | " + line.decode("utf-8", "replace").rstrip())


def run(state_dir, seconds=None, say=print):
    errors = build.compile_files(build.device_sources(ROOT), BUILD)
    if errors:
        raise SystemExit("mpy-cross failed:\n" + "\n".join(errors))
    hub = MockHub(state_dir / "hub").start()
    child = None
    try:
        cid = prepare_board(state_dir / "flash", hub)
        say("mock hub: %s   dashboard: %s/" % (hub.base_url, hub.admin_url))
        if cid:
            say("agent %s created; the node onboards with its key" % cid)
        env = dict(os.environ, MC_FLASH_DIR=str(state_dir / "flash"), MC_BOARD="sim",
                   MICROPYPATH="%s:%s" % (BUILD / "lib", BUILD))
        child = subprocess.Popen([interpreter(), "-X", "heapsize=" + HEAPSIZE, "-c", "import boot\nimport main"],
                                 cwd=str(state_dir), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        reader = threading.Thread(target=relay, args=(child.stdout, say), daemon=True)
        reader.start()
        say("node running (MicroPython, -X heapsize=%s); %s" % (
            HEAPSIZE, "stops in %d s" % seconds if seconds else "Ctrl-C to stop"))
        try:
            child.wait(timeout=seconds)
            say("node exited with code %d" % child.returncode)
            return child.returncode or 1
        except subprocess.TimeoutExpired:
            return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        hub.stop()
        say("stopped")


def main():
    state_dir = Path(os.environ.get("DEMO_STATE") or "demo-state").resolve()
    seconds = os.environ.get("DEMO_SECONDS")
    sys.exit(run(state_dir, int(seconds) if seconds else None, say=lambda s: print(s, flush=True)))


if __name__ == "__main__":
    main()
