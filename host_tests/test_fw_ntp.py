"""NTP over a real UDP socket on 127.0.0.1, on CPython and under the MicroPython unix port."""

import socket
import struct
import threading

import pytest

from firmware import net
from firmware.boards import sim

T_UNIX = 1767225600  # 2026-01-01T00:00:00Z


@pytest.fixture
def ntp_server():
    """Answers every request with T_UNIX + 0.25 s (stratum 2, server mode) until the test ends."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    stop = threading.Event()
    seen = []

    def serve():
        while not stop.is_set():
            try:
                req, addr = s.recvfrom(512)
            except OSError:
                continue
            seen.append(req)
            pkt = bytearray(48)
            pkt[0], pkt[1] = 0x24, 2
            pkt[40:48] = struct.pack(">II", T_UNIX + net.NTP_DELTA_S, 1 << 30)
            s.sendto(bytes(pkt), addr)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield s.getsockname()[1], seen
    stop.set()
    th.join()
    s.close()


def test_ntp_sync_cpython(ntp_server, tmp_path):
    port, seen = ntp_server
    board = sim.SimBoard(str(tmp_path / "flash"), lambda: 0, lambda ms: None, sim.SimState())
    assert net.ntp_sync(board, "127.0.0.1", timeout_ms=5000, port=port) is True
    assert board.unix_ms() == T_UNIX * 1000 + 250
    assert len(seen) == 1 and len(seen[0]) == 48 and seen[0][0] == 0x23


def test_ntp_sync_micropython(ntp_server, mpy, tmp_path):
    port, seen = ntp_server
    code = """
import sys
if "" in sys.path:
    sys.path.remove("")
from firmware import net
from firmware.boards import sim
b = sim.SimBoard(%r, lambda: 0, lambda ms: None, sim.SimState())
print("sync", net.ntp_sync(b, "127.0.0.1", timeout_ms=5000, port=%d), b.unix_ms())
""" % (str(tmp_path / "flash"), port)
    proc = mpy.run_code(code)
    assert proc.stdout.strip() == "sync True %d" % (T_UNIX * 1000 + 250), proc.stdout + proc.stderr
    assert len(seen) == 1
