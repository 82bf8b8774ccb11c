"""The node process of the soak (MicroPython unix port, heap cap) and the pipes to it.

The process runs tools/soak/node.py compiled with mpy-cross against the device files in build/mpy. It
talks over two pipes (inherited as /dev/fd/N); its stdout and stderr (the node's log) are kept, the
last lines in memory and all of them in a log file.
"""

import collections
import os
import signal
import subprocess
import threading
from pathlib import Path

from tools import build
from tools.virtual_board import interpreter

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = ROOT / "build" / "mpy"
NODE_BUILD = ROOT / "build" / "soak"
NODE_SOURCE = Path(__file__).resolve().parent / "node.py"


def compile_node():
    """Device files into build/mpy and the node script into build/soak (both incremental)."""
    errors = build.compile_files(build.device_sources(ROOT), BUILD)
    errors += build.compile_files([(NODE_SOURCE, Path("soaknode.py"))], NODE_BUILD)
    if errors:
        raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))


class NodeProcess:
    """One power-on of the node: a MicroPython process on the flash folder, until it is killed."""

    def __init__(self, flash_dir, heapsize, log_path):
        to_node_r, self._to_node = os.pipe()
        self._from_node, from_node_w = os.pipe()
        env = dict(os.environ, MICROPYPATH="%s:%s:%s" % (NODE_BUILD, BUILD / "lib", BUILD))
        self._log = open(log_path, "ab")
        self.tail = collections.deque(maxlen=40)
        self.proc = subprocess.Popen(
            [interpreter(), "-X", "heapsize=" + heapsize, "-m", "soaknode", str(flash_dir),
             "/dev/fd/%d" % to_node_r, "/dev/fd/%d" % from_node_w],
            cwd=str(BUILD), env=env, pass_fds=(to_node_r, from_node_w), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        os.close(to_node_r)
        os.close(from_node_w)
        self.rx = os.fdopen(self._from_node, "rb")
        self.tx = os.fdopen(self._to_node, "wb", buffering=0)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self):
        for line in iter(self.proc.stdout.readline, b""):
            self._log.write(line)
            self.tail.append(line.decode("utf-8", "replace").rstrip())

    def note(self, text):
        """A line of the runner's own in the node's log (power-on, power cut, firmware change)."""
        self._log.write(b"== %s\n" % text.encode())

    def message(self):
        """The next line from the node as a list of words; [] when the process has ended."""
        return self.rx.readline().split()

    def answer(self, now_ms, wifi_up, clock_error_ms):
        try:
            self.tx.write(b"%d %d %d\n" % (now_ms, 1 if wifi_up else 0, clock_error_ms))
        except BrokenPipeError:
            pass  # the node died; the next message() says so

    def kill(self):
        """A power cut: SIGKILL, whatever the node is doing (the reader of message() sees the end)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def close(self):
        self.proc.wait()
        self._reader.join(5)
        for f in (self.rx, self.tx, self.proc.stdout, self._log):
            try:
                f.close()
            except OSError:
                pass

    def log_tail(self):
        return "\n".join(self.tail)
