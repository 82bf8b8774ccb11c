"""Dual-runtime tests: every test in host_tests/dual runs twice, [cpython] and [micropython].

A dual test module imports only what both runtimes have, plus `dualtest`. Its test functions take no
arguments. Host-side services it needs (an HTTPS server, a mock hub...) are named in a module-level
tuple HOST_FIXTURES: those pytest fixtures are started on the host for both runtimes and hand their
addresses to the test through environment variables (read with dualtest.env).

The [micropython] variant runs the one test function in a fresh `micropython -X heapsize=...` process,
from .mpy files compiled by mpy-cross, through mpy_runner; its traceback becomes the pytest failure.
A module may set MPY_HEAPSIZE = "96K" when it tests something that needs a bigger heap by design.
A module may set MPY_DEVICE_FORM = "rom" to run its [micropython] variant in device form: lib/ and
firmware/ executed in place from a ROMFS image, as frozen code on a board (see host_tests/mpyharness.py).
The cap keeps its meaning there: the usable heap is that of -X heapsize=MPY_HEAPSIZE; the process is
given that plus the image, which is flash on a board. The pytest summary lists the tests run in ROM form.
"""

import os
import re
from pathlib import Path

import mpyharness
import pytest


@pytest.fixture(autouse=True, params=["cpython", "micropython"])
def runtime(request, tmp_path, monkeypatch):
    if request.param == "micropython":
        mpyharness.require_micropython()
    monkeypatch.setenv("DUALTEST_TMP", str(tmp_path))
    for name in getattr(request.module, "HOST_FIXTURES", ()):
        request.getfixturevalue(name)
    return request.param


_RESULT = re.compile(r"^@@(PASS|FAIL|SKIP)(?: (.*))?$", re.M)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    callspec = getattr(pyfuncitem, "callspec", None)
    if not callspec or callspec.params.get("runtime") != "micropython":
        return None
    module = Path(str(pyfuncitem.fspath)).stem
    heap = getattr(pyfuncitem.module, "MPY_HEAPSIZE", None) or mpyharness.heapsize()
    form = getattr(pyfuncitem.module, "MPY_DEVICE_FORM", "plain")
    timeout = getattr(pyfuncitem.module, "MPY_TIMEOUT", 300)
    if form == "rom":
        mpyharness.ROM_FORM_TESTS.append((pyfuncitem.nodeid, heap))
        heap_text = "%s, ROM form" % heap
    else:
        heap_text = heap
    proc = mpyharness.run(["-m", "mpy_runner", module, pyfuncitem.originalname], heap=heap,
                          timeout=timeout, env=dict(os.environ), form=form)
    out = proc.stdout + proc.stderr
    results = list(_RESULT.finditer(proc.stdout))
    m = results[-1] if results else None
    heap = heap_text
    if m is None:
        pytest.fail("MicroPython (heapsize=%s) exited %d without a result:\n%s"
                    % (heap, proc.returncode, out), pytrace=False)
    if m.group(1) == "SKIP":
        pytest.skip(m.group(2) or "skipped under MicroPython")
    if m.group(1) == "FAIL":
        pytest.fail("under MicroPython (heapsize=%s):\n%s" % (heap, out), pytrace=False)
    if proc.returncode != 0:
        pytest.fail("MicroPython exited %d after the test passed:\n%s" % (proc.returncode, out),
                    pytrace=False)
    return True
