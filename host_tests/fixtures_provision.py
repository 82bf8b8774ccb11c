"""pytest fixtures (host side) for the virtual board and provisioning; imported by host_tests/conftest.py."""

import subprocess
import sys
from pathlib import Path

import mpyharness
import pytest

MPREMOTE = str(Path(sys.executable).parent / "mpremote")
# mpremote can block forever on a pty when the other side misbehaves: every call has a deadline.
MPREMOTE_TIMEOUT = 30


def mpremote(port, *args, timeout=MPREMOTE_TIMEOUT):
    """Run `mpremote connect <port> <args...>`; returns the CompletedProcess (text)."""
    return subprocess.run([MPREMOTE, "connect", port] + list(args), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def vboard(tmp_path_factory):
    """One virtual board per test module (starting mpremote sessions is the slow part, not the board)."""
    mpyharness.require_micropython()
    from tools.virtual_board import VirtualBoard
    # 256K, as the agent's end-to-end tests: onboarding (agent, http, transport from .mpy) needs about
    # 120K on the 64-bit unix port, on top of what boot.py keeps (firmware.power: about 24K)
    board = VirtualBoard(tmp_path_factory.mktemp("flash"), flash_size=2 * 1024 * 1024, heapsize="256K")
    board.start()
    yield board
    board.stop()
