"""One mpremote session with a board, every call bounded by a deadline.

mpremote (its SerialTransport, used as a library) can block forever on a port whose other side stops
answering, a pty in particular. Each call here runs under a watchdog that closes the port when its
deadline passes, which turns the hang into a ProvisionError that says what to check.
"""

import base64
import json
import os
import threading
from pathlib import Path

from tools.provision_bundle import ProvisionError

DEVICE_HELPERS = Path(__file__).with_name("provision_device.py")
CHUNK = 2048  # file bytes per raw-REPL call: small enough for an ESP32's heap, large enough to be quick


class BoardLink:
    """A raw-REPL session on `port`, with the device helpers of provision_device.py loaded."""

    def __init__(self, port, timeout=20):
        self.port = port
        self.timeout = timeout
        self.transport = None
        if not os.path.exists(port):
            raise ProvisionError("serial port %s does not exist: plug the board in and list ports with "
                                 "`mpremote devs`" % port)
        # mpremote only treats /dev/pts/N as a pty (and is about ten times slower on a symlink to one)
        real = os.path.realpath(port)
        from mpremote.transport_serial import SerialTransport
        try:
            self.transport = SerialTransport(real, baudrate=115200, timeout=timeout / 4)
        except Exception as e:
            raise ProvisionError("cannot open %s (%s): is another program (a terminal, mpremote) using it?"
                                 % (port, e.__class__.__name__)) from None
        self.fresh()

    def fresh(self, helpers=True):
        """Soft-reset into the raw REPL: a clean heap (onboarding needs most of an ESP32's); then load
        the device helpers unless helpers is False."""
        self._guarded(lambda: self.transport.enter_raw_repl(soft_reset=True, timeout_overall=self.timeout),
                      self.timeout, "enter the raw REPL")
        if helpers:
            self.exec(DEVICE_HELPERS.read_text())

    def restart(self):
        """Leave the raw REPL and soft-reset, so the board runs boot.py and main.py as after power-up."""
        self._guarded(self.transport.exit_raw_repl, self.timeout, "leave the raw REPL")
        self._guarded(lambda: self.transport.serial.write(b"\x04"), self.timeout, "soft reset")

    def close(self):
        if self.transport is not None:
            try:
                if self.transport.in_raw_repl:
                    self.transport.exit_raw_repl()
                self.transport.close()
            except Exception:
                pass  # already closed by a watchdog
            self.transport = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _guarded(self, fn, timeout, what):
        fired = []

        def abort():
            fired.append(True)
            try:
                (self.transport.serial if self.transport else None).close()
            except Exception:
                pass

        timer = threading.Timer(timeout, abort)
        timer.daemon = True
        timer.start()
        try:
            return fn()
        except Exception as e:
            if fired:
                raise ProvisionError("the board on %s did not answer within %d s (%s): press its reset button, "
                                     "check that MicroPython runs on it, and try again" % (self.port, timeout, what)
                                     ) from None
            from mpremote.transport import TransportError
            from serial import SerialException
            if isinstance(e, TransportError):
                raise ProvisionError("the board on %s does not answer like MicroPython (%s): flash MicroPython "
                                     "1.23 or newer and try again" % (self.port, what)) from None
            if isinstance(e, (SerialException, OSError)):
                # the cable pulled or the board reset hard: one board's failure, not the fleet run's end
                raise ProvisionError("the board on %s was disconnected (%s): check the USB cable and run "
                                     "provisioning again; files already copied are kept, the rest is copied "
                                     "then" % (self.port, what)) from None
            raise
        finally:
            timer.cancel()

    def exec(self, code, timeout=None):
        """Run code on the board; its output (text). A device exception becomes a ProvisionError whose
        message is the device's last traceback line (the code itself, which may hold secrets, is not shown)."""
        timeout = timeout or self.timeout
        out, err = self._guarded(lambda: self.transport.exec_raw(code, timeout=timeout), timeout + 5, "running code")
        if err:
            lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
            raise ProvisionError("the board raised %s" % (lines[-1] if lines else "an error"))
        return out.decode("utf-8", "replace")

    def call(self, expr, timeout=None):
        """Run a device helper call (expr) and return the JSON of its "@@" result line."""
        out = self.exec(expr, timeout)
        for line in reversed(out.splitlines()):
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise ProvisionError("the board gave no result for %s: %s" % (expr.split("(")[0], out.strip()[-200:]))

    def facts(self):
        return self.call("_pv_facts()")

    def state(self, paths, trees):
        """{board path: (size, sha256 hex)} of the given paths and everything under the trees."""
        return {k: tuple(v) for k, v in self.call("_pv_state(%r, %r)" % (list(paths), list(trees)),
                                                   timeout=self.timeout * 3).items()}

    def json_files(self, paths):
        """{board path: parsed JSON} of those of paths that exist and hold JSON. They may hold secrets:
        the result is for this program only, never shown (not even in an error: call() would show it)."""
        out = self.exec("_pv_json(%r)" % list(paths))
        for line in reversed(out.splitlines()):
            if line.startswith("@@"):
                try:
                    return json.loads(line[2:])
                except ValueError:
                    break
        raise ProvisionError("the board's answer for config.json and secrets.json arrived damaged; try again, "
                             "or use a shorter USB cable")

    def write_file(self, path, data, progress=None):
        """Write data to path through a temp file and a rename; returns the board's sha256 of the result."""
        self.exec("_pv_open(%r)" % path)
        for i in range(0, len(data), CHUNK):
            self.exec("_pv_w(%r)" % base64.b64encode(data[i:i + CHUNK]).decode())
            if progress:
                progress(min(i + CHUNK, len(data)), len(data))
        return self.call("_pv_close()")

    def remove(self, path):
        self.call("_pv_remove(%r)" % path)
