"""The node side of the soak: runs inside the MicroPython process, compiled with mpy-cross.

    micropython -X heapsize=256K -m node FLASH_DIR /dev/fd/R /dev/fd/W

boot.py's and main.py's work (firmware.power.boot, then run_main) on a simulated board whose clock is
handed over by the runner: time stands still while the node works and moves only when it sleeps, by
the length of the sleep, which the runner also applies to the mock hub. Lines to the runner (W):

    H                            hello; the runner answers with the time
    L <ms>                       a light sleep (Wi-Fi polling, safe-pin watch); answered with the time
    D <ms> <live heap> <dropped> <agent>
                                 a deep sleep: the wake cycle is over; answered with the time
                                 (dropped: the readings spool's count since it was made; agent: 1 once
                                 mindconnect.agent is imported, which a wake without Wi-Fi has not done)
    R <unix ms>                  a sensor was read at this board time (no answer)

Answers (R): "<unix ms> <wifi 0|1> <board clock error ms>". The board's clock is the runner's time
plus the error (a wrong RTC); setting the error back to 0 is the clock jump NTP would make.
Host-only tooling: this file is not part of the device image.
"""

import gc
import sys

from firmware import power
from firmware.boards.sim import SimState


class Link:
    """The two pipes to the runner and the time it last handed over."""

    def __init__(self, rx_path, tx_path):
        self.rx = open(rx_path, "rb")
        self.tx = open(tx_path, "wb")
        self.now = 0
        self.clock_error = None
        self.state = SimState()
        self.app = None  # the running App, for its spool's drop counter

    def send(self, line):
        self.tx.write(line.encode())  # unbuffered on the unix port (and flush() on a pipe fails)

    def ask(self, line):
        self.send(line)
        parts = self.rx.readline().split()
        if not parts:
            raise SystemExit("the soak runner closed the link")
        self.now = int(parts[0])
        self.state.wifi_up = parts[1] == b"1"
        offset = int(parts[2])
        if offset != self.clock_error:  # the timeline's clock error began or ended; in between the
            self.clock_error = offset  # app's own corrections (the gateway's Date) stand
            self.state.clock_offset_ms = offset

    def clock_ms(self):
        return self.now

    def sleep_ms(self, ms):
        self.ask("L %d\n" % ms)


LINK = None


def board_class():
    """The soak's board class, made from the firmware.boards.sim now in sys.modules.

    power.boot() unloads the firmware modules it used (as on a board), so the board for run_main is
    made again afterwards: its Reset must be the class run_main catches.
    """
    from firmware.boards import Reset
    from firmware.boards.sim import Signals, SimBoard

    class ReportingSignals(Signals):
        """The board's sensor signals, telling the runner each instant a sensor was read."""

        last = None

        def value(self, quantity, unix_ms, seed=0):
            if unix_ms != self.last:
                self.last = unix_ms
                LINK.send("R %d\n" % unix_ms)
            return Signals.value(self, quantity, unix_ms, seed)

    class SoakBoard(SimBoard):
        """The simulated board with the runner's clock; a deep sleep ends the wake cycle at the runner."""

        def signals(self):
            if self._signals is None:
                self._signals = ReportingSignals()
            return self._signals

        def deepsleep(self, ms):
            self.state.reset_cause = "deepsleep"
            self._wdt = None
            app = LINK.app
            dropped = app.readings.dropped if app is not None else 0
            LINK.app = None
            app = None
            gc.collect()
            LINK.ask("D %d %d %d %d\n" % (max(ms, 1), gc.mem_alloc(), dropped, "mindconnect.agent" in sys.modules))
            raise Reset("deepsleep")

    return SoakBoard


def app_main(board, cfg):
    """firmware.app.main, keeping a reference to the App for its drop counter; log lines carry the
    board's time."""
    from firmware.app import App
    app = App(board, cfg, log=lambda m: print(board.unix_ms(), m))
    LINK.app = app
    try:
        app.run()
    finally:
        app.close()


def main():
    global LINK
    flash, rx, tx = sys.argv[1], sys.argv[2], sys.argv[3]
    LINK = Link(rx, tx)
    LINK.ask("H\n")
    power.boot(board_class()(flash, LINK.clock_ms, LINK.sleep_ms, LINK.state))
    power.run_main(app_main, board_class()(flash, LINK.clock_ms, LINK.sleep_ms, LINK.state))
    LINK.send("X\n")  # run_main returned: safe mode or a refused config


main()
