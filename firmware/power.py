"""Safe mode, the crash counter, main.py's run loop, and RTC-memory records that survive deep sleep.

Safe mode (no app, REPL only, a message printed) is entered when the safe pin is held low at boot
(GPIO0, the BOOT button, by default) or when the app failed CRASHES_FOR_SAFE_MODE boots in a row.
A boot counts as failed until the app calls mark_healthy(); the count is kept in a small file on the
flash (written atomically), so it survives resets and power cuts alike. Entering safe mode clears the
count: the next reset tries the app again. A safe mode entered for crashes makes that reset itself
after SAFE_RETRY_MS (an unattended node whose crashes had a passing cause, such as an answer it could
not handle, recovers without a visit); a person at the REPL cancels it with power.stay().

A power cut is not a failure of the app: when a boot finds the power-on (or brownout) reset cause and
the boot before it was still in progress (neither marked healthy nor recorded as a crash), that boot is
not counted. Otherwise a node whose supply drops three times during its first upload would wait in safe
mode for someone to visit it. Crashes, watchdog resets and hangs still count as before.
"""

import binascii
import json
import os
import struct
import sys

# Only built-in modules at the top: boot() unloads the firmware and library modules it used, so that
# boot.py leaves the heap to main.py (anything imported here at module level would stay loaded).

CONFIG_FILE = "config.json"
CRASH_FILE = "crash_count"
CRASHES_FOR_SAFE_MODE = 3
CRASH_PAUSE_MS = 5000  # between a crash and the reset: time to read the traceback, and no hot loop
SAFE_WINDOW_MS = 500  # how long boot watches the safe pin after a power-on or reset
SAFE_POLL_MS = 50
DEFAULT_SAFE_PIN = 0
SAFE_RETRY_MS = 3600 * 1000  # a safe mode entered for crashes resets (tries the app again) after this

_boot_checked = False
_safe_reason = None
_retry = None  # the board's timer that ends a safe mode entered for crashes


class CrashCounter:
    """Boots that have not (yet) been marked healthy, and the last crash, in flash_dir/crash_count."""

    def __init__(self, flash_dir):
        self.path = flash_dir.rstrip("/") + "/" + CRASH_FILE

    def read(self):
        """(count, last crash text or "")."""
        return self._read()[:2]

    def _read(self):
        """(count, last crash text, 1 when the last counted boot is still in progress)."""
        try:
            with open(self.path) as f:
                lines = f.read().split("\n")
            running = len(lines) > 2 and lines[2] == "running"
            return int(lines[0]), lines[1] if len(lines) > 1 else "", running
        except (OSError, ValueError):
            return 0, "", False

    def _write(self, count, last, running=False):
        from mindconnect import compat
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write("%d\n%s\n%s\n" % (count, last, "running" if running else ""))
                compat.fsync_file(f)
            os.rename(tmp, self.path)
        except OSError:
            pass  # a full flash: the boot goes uncounted rather than the app not started at all

    def started(self):
        """Count a boot that is about to start the app; returns the new count."""
        count, last, _ = self._read()
        self._write(count + 1, last, True)
        return count + 1

    def crashed(self, exc):
        """Remember what the last crash was (shown in the safe-mode message)."""
        count, _, _ = self._read()
        text = "%s: %s" % (type(exc).__name__, exc)
        self._write(count, text.replace("\n", " ")[:160])

    def power_cut(self):
        """The power went away: the boot it interrupted (if one was in progress) is not counted."""
        count, last, running = self._read()
        if not running:
            return
        if count > 1 or last:
            self._write(count - 1, last)
        else:
            self.clear()

    def clear(self):
        try:
            os.remove(self.path)
        except OSError:
            pass  # nothing counted


def mark_healthy(board):
    """The app calls this once it has done useful work (e.g. a first complete sample-and-upload cycle)."""
    CrashCounter(board.flash_dir).clear()


def _safe_pin(flash_dir):
    """config.json's safe_pin, read without the full config check (boot must be quick and never fail)."""
    try:
        with open(flash_dir.rstrip("/") + "/" + CONFIG_FILE) as f:
            pin = json.load(f).get("safe_pin", DEFAULT_SAFE_PIN)
        # Never the REPL's serial port (1, 3) or the SPI flash (6-11): made an input with a pull-up here,
        # before config.load can refuse them, they would cut the REPL (or the flash the code runs from) at
        # every boot, and the config error could be neither read nor fixed without erasing the board.
        if pin is None or (isinstance(pin, int) and not isinstance(pin, bool)
                           and pin not in (1, 3, 6, 7, 8, 9, 10, 11)):
            return pin
        return DEFAULT_SAFE_PIN
    except (OSError, ValueError, AttributeError):
        return DEFAULT_SAFE_PIN


def _pin_held(board, n):
    """True when pin n reads low; watched for SAFE_WINDOW_MS, or read once on a wake from deep sleep."""
    if n is None:
        return False
    try:
        pin = board.pin(n)
    except (ValueError, OSError):  # not a GPIO of this board: config.load names the field and the fix
        return False
    polls = 1 if board.reset_cause() == "deepsleep" else SAFE_WINDOW_MS // SAFE_POLL_MS
    for i in range(polls):
        if pin.value() == 0:
            return True
        if i + 1 < polls:
            board.sleep_ms(SAFE_POLL_MS)
    return False


def check_safe_mode(board):
    """The reason to stay in safe mode (and print it), or None to start the app."""
    counter = CrashCounter(board.flash_dir)
    if board.reset_cause() in ("power-on", "brownout"):
        counter.power_cut()
    count, last = counter.read()
    reason = None
    retry = False
    if count >= CRASHES_FOR_SAFE_MODE:
        counter.clear()
        reason = "the app failed %d boots in a row (last: %s)" % (count, last or "no error recorded")
        retry = True
    else:
        pin = _safe_pin(board.flash_dir)
        if _pin_held(board, pin):
            reason = "GPIO%d was held low at boot" % pin
    if reason:
        print("SAFE MODE: %s." % reason)
        print("The app is not started and the REPL is yours. Fix the cause, then reset to try the app again.")
    if retry:
        global _retry
        _retry = board.reset_after(SAFE_RETRY_MS)
        print("Unattended, the board resets in %d min to try the app again; to stay in safe mode, run:"
              % (SAFE_RETRY_MS // 60000))
        print("    from firmware import power; power.stay()")
    return reason


def stay():
    """Cancel the reset that ends a safe mode entered for crashes: the REPL stays until the next reset."""
    global _retry
    if _retry is not None:
        _retry.deinit()
        _retry = None
    print("Staying in safe mode until the next reset.")


def boot(board=None, unload=True):
    """boot.py: decide about safe mode once; main.py (same interpreter session) follows the decision.

    unload: then drop what the check imported (board, library modules) from sys.modules, so main.py
    starts with the heap boot.py found; only this module and its decision stay.
    """
    global _boot_checked, _safe_reason
    if board is None:
        from firmware import boards
        board = boards.make()
    _safe_reason = check_safe_mode(board)
    _boot_checked = True
    if unload:
        _unload()
    return _safe_reason


def _unload():
    import gc

    import firmware
    for name in list(sys.modules):
        if (name.startswith("firmware.") and name != "firmware.power") or name.startswith("mindconnect"):
            del sys.modules[name]
    for name in dir(firmware):
        if not name.startswith("_") and name != "power":
            delattr(firmware, name)
    gc.collect()


def print_exception(exc):
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)
    else:  # CPython
        import traceback
        traceback.print_exception(type(exc), exc, exc.__traceback__)


def _run_app(board, app_main):
    from firmware import boards, config
    from mindconnect.errors import ConfigError
    counter = CrashCounter(board.flash_dir)
    count = counter.started()
    try:
        cfg = config.load(board.flash_dir)
        for w in cfg.warnings:
            print("config warning:", w)
        if cfg.board != "auto" and cfg.board != board.name:
            board = boards.make(cfg.board, flash_dir=board.flash_dir)
        if app_main is None:
            from firmware.app import main as app_main
        app_main(board, cfg)
    except ConfigError as e:
        counter.clear()  # not a crash: nothing will change until the user fixes the file
        print("config error:", e)
        print("The app is not started; fix the file on the flash, then reset.")
    except boards.Reset:
        raise
    except Exception as e:  # KeyboardInterrupt passes: Ctrl-C gives the REPL
        print_exception(e)
        counter.crashed(e)
        print("app crashed (failed boot %d of %d before safe mode); reset in %d s"
              % (count, CRASHES_FOR_SAFE_MODE, CRASH_PAUSE_MS // 1000))
        board.sleep_ms(CRASH_PAUSE_MS)
        board.reset()


def run_main(app_main=None, board=None):
    """main.py: run firmware.app.main(board, cfg) unless in safe mode or the config is bad.

    A crash is printed and counted, then the board resets after CRASH_PAUSE_MS. The simulated board
    raises boards.Reset instead of resetting: this loop then boots again, safe-mode check included.
    Returns the safe-mode reason, or None when the app returned or the config was refused.
    """
    from firmware import boards
    board = board or boards.make()
    reason = _safe_reason if _boot_checked else check_safe_mode(board)
    while reason is None:
        try:
            _run_app(board, app_main)
            return None
        except boards.Reset:
            board = board.rebooted()
            reason = check_safe_mode(board)
    return reason


class RtcRecord:
    """One payload in RTC memory (survives deep sleep and resets, not power cuts), e.g. the schedule.

    Framed with a magic and a CRC-32, so the garbage found after a power-on reads as None.
    """

    MAGIC = b"MCR1"

    def __init__(self, board):
        self.mem = board.rtc_memory()

    def load(self):
        data = self.mem.get()
        if len(data) < 10 or data[:4] != self.MAGIC:
            return None
        n, crc = struct.unpack("<HI", data[4:10])
        payload = bytes(data[10:10 + n])
        if len(payload) != n or binascii.crc32(payload) & 0xFFFFFFFF != crc:
            return None
        return payload

    def save(self, payload):
        self.mem.set(self.MAGIC + struct.pack("<HI", len(payload), binascii.crc32(payload) & 0xFFFFFFFF) + payload)
