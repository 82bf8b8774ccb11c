# The virtual board answers the real mpremote like a board: run code, copy files into its flash folder,
# soft-reset, interrupt running code, report its flash size and (when asked) an older MicroPython.
import ast

import mpyharness
import pytest
from fixtures_provision import mpremote

from tools.virtual_board import VirtualBoard, _cook


def _ok(proc):
    assert proc.returncode == 0, "mpremote failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def test_runs_code_and_reports_the_unix_port(vboard):
    out = _ok(mpremote(vboard.port, "exec", "import sys; print(sys.implementation.name, sys.implementation._mpy)"))
    assert out.split() == ["micropython", "2822"]


def test_copied_file_lands_in_the_flash_folder_and_imports_from_lib(vboard, tmp_path):
    src = tmp_path / "greeting.py"
    src.write_text("WORDS = 'hello from flash'\n")
    _ok(mpremote(vboard.port, "fs", "mkdir", ":lib"))
    _ok(mpremote(vboard.port, "fs", "cp", str(src), ":lib/greeting.py"))
    with open(vboard.flash_dir + "/lib/greeting.py") as f:
        assert f.read() == src.read_text()
    out = _ok(mpremote(vboard.port, "exec", "import greeting; print(greeting.WORDS)"))
    assert out.strip() == "hello from flash"
    listing = _ok(mpremote(vboard.port, "fs", "ls", ":/lib"))
    assert "%d greeting.py" % len(src.read_bytes()) in listing


def test_soft_reset_restarts_the_interpreter(vboard):
    before = vboard.soft_reboots
    # one session: state set, soft reset, the state is gone as on a board
    out = _ok(mpremote(vboard.port, "exec", "marker = 42", "soft-reset", "exec", "print('marker' in globals())"))
    assert out.strip() == "False"
    assert vboard.soft_reboots >= before + 2  # mpremote's own reset on connect, then the explicit one


def test_ctrl_c_interrupts_code_sent_in_raw_paste_mode(vboard):
    _ok(mpremote(vboard.port, "exec", "--no-follow", "import time\nwhile True:\n    time.sleep_ms(10)"))
    # the next session can only enter the raw REPL if its Ctrl-C stopped the loop
    out = _ok(mpremote(vboard.port, "resume", "exec", "print('after the loop')"))
    assert out.strip() == "after the loop"


def test_statvfs_reports_the_virtual_flash_size(vboard):
    out = _ok(mpremote(vboard.port, "exec", "import os; print(tuple(os.statvfs('/')))"))
    st = ast.literal_eval(out.strip())
    assert st[0] * st[2] == 2 * 1024 * 1024
    assert 0 < st[0] * st[3] < 2 * 1024 * 1024  # the files copied above use some of it


def test_pretend_version_and_main_py_interrupted_by_connect(tmp_path):
    mpyharness.require_micropython()
    (tmp_path / "main.py").write_text("import time\nprint('main running')\nwhile True:\n    time.sleep_ms(10)\n")
    with VirtualBoard(tmp_path, pretend_version=(1, 22, 2, ""), run_main=True) as board:
        out = _ok(mpremote(board.port, "exec", "import sys; print(sys.implementation.version[:3])"))
    assert out.strip() == "(1, 22, 2)"


@pytest.mark.parametrize("data,last,cooked", [
    (b"a\nb\n", 0, b"a\r\nb\r\n"),
    (b"a\r\nb", 0, b"a\r\nb"),
    (b"\nx", 0x0D, b"\nx"),
])
def test_console_newlines_as_a_board(data, last, cooked):
    assert _cook(data, last) == cooked
