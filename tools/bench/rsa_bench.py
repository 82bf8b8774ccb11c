"""RS256 (RSA_3072 profile): time per signature on both runtimes, peak heap of one, an ESP32 estimate."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import build, rsakey
from tools.bench import util
from tools.bench.heap import HI_KB, LO_KB, mpy_version

SCRIPT = Path(__file__).with_name("rsa_workload.py")
COUNT = 5
ESP32_MHZ = 240
# Digit width of MicroPython's big integers (py/mpz.h, MPZ_DIG_SIZE): 32 bits on x86-64, 16 elsewhere.
HOST_DIGIT_BITS, ESP32_DIGIT_BITS = 32, 16
# Cycles per digit operation on the ESP32's in-order Xtensa LX6 core, relative to this machine's
# (out-of-order x86-64): 1x to 2x is assumed; it has a one-cycle 16x16 multiply and single-cycle SRAM.
ESP32_CYCLE_FACTOR = (1.0, 2.0)


def host_mhz():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1])
    except OSError:
        pass
    return None


class Runner:
    def __init__(self, out_dir, work):
        errors = build.compile_files(build.device_sources(), out_dir)
        self.scripts = work / "scripts"
        errors += build.compile_files([(SCRIPT, Path(SCRIPT.name))], self.scripts)
        if errors:
            raise RuntimeError("\n".join(errors))
        self.env = util.mpy_env(out_dir, extra=[self.scripts])
        self.private = rsakey.generate()
        self.key = work / "rsa_key"
        self.key.write_bytes(rsakey.device_form(self.private))

    def mpy(self, mode, heap_kb, count=COUNT):
        proc = subprocess.run(util.micropython_cmd("%dK" % heap_kb) + ["-m", "rsa_workload", mode, str(self.key),
                                                                        str(count)],
                              env=self.env, capture_output=True, text=True, timeout=300)
        return proc.returncode == 0, proc.stdout + proc.stderr

    def cpython(self):
        env = dict(os.environ, PYTHONPATH=str(util.ROOT / "lib"))
        proc = subprocess.run([sys.executable, str(SCRIPT), "time", str(self.key), str(COUNT)], env=env,
                              capture_output=True, text=True, timeout=300)
        return proc.returncode == 0, proc.stdout + proc.stderr

    def smallest_heap(self, mode):
        ok, out = self.mpy(mode, HI_KB, 1)
        if not ok or "@@OK" not in out:
            raise RuntimeError("rsa %s fails even at %dK:\n%s" % (mode, HI_KB, out[-2000:]))
        lo, hi = LO_KB, HI_KB
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok, out = self.mpy(mode, mid, 1)
            if ok and "@@OK" in out:
                hi = mid
            else:
                lo = mid
        return hi


def _times(ok, out, runtime):
    line = [x for x in out.splitlines() if x.startswith("@@US")]
    if not ok or not line:
        raise RuntimeError("rsa timing failed on %s:\n%s" % (runtime, out[-2000:]))
    return [int(x) / 1000 for x in line[0].split()[1:]]


def openssl_ms(key):
    """The same signature by the cryptography package (OpenSSL, C), for scale."""
    import time

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    best = None
    for i in range(COUNT):
        t = time.perf_counter()
        key.sign(b"header.claims" + bytes((i,)), padding.PKCS1v15(), hashes.SHA256())
        ms = (time.perf_counter() - t) * 1000
        best = ms if best is None else min(best, ms)
    return best


def esp32_estimate(crt_ms, check_ms, mhz):
    """(low, high) seconds for a signature on a 240 MHz ESP32, scaled from the unix port's figures.

    Schoolbook multiplication and division in mpz cost digits squared, and the ESP32's digits are half
    as wide, so each big-integer operation does 4x the digit operations; the exponentiation does the
    same number of them (square-and-multiply over the same exponent bits). Cycles per digit operation
    are taken from this machine's figure times ESP32_CYCLE_FACTOR, at 240 MHz instead of its clock.
    """
    ops = (HOST_DIGIT_BITS // ESP32_DIGIT_BITS) ** 2
    host_cycles = (crt_ms + check_ms) / 1000 * mhz * 1e6
    return tuple(host_cycles * ops * f / (ESP32_MHZ * 1e6) for f in ESP32_CYCLE_FACTOR)


def run(out_dir):
    with tempfile.TemporaryDirectory(prefix="mcrsa") as work:
        r = Runner(out_dir, Path(work))
        mpy_sign, mpy_crt, mpy_check = _times(*r.mpy("time", 512), "MicroPython")
        cpy_sign, cpy_crt, cpy_check = _times(*r.cpython(), "CPython")
        ossl = openssl_ms(r.private)
        load_kb = r.smallest_heap("load")
        sign_kb = r.smallest_heap("sign")
    mhz = host_mhz()
    lines = ["One RS256 signature (PKCS#1 v1.5, SHA-256) with a 3072-bit key by `lib/mindconnect/rsa.py`: two "
             "1536-bit exponentiations (CRT) with the big integers of the runtime, then the check s^e mod n. "
             "Fastest of %d, in ms; load average %.1f on %d cores while measuring (shared machine: upper "
             "bounds)." % (COUNT, os.getloadavg()[0], os.cpu_count() or 0), "",
             "| runtime | signature | the two CRT exponentiations | check with e = 65537 |",
             "|---|---:|---:|---:|",
             "| MicroPython %s unix port | %.1f | %.1f | %.1f |" % (mpy_version(), mpy_sign, mpy_crt, mpy_check),
             "| CPython %s, same code | %.1f | %.1f | %.1f |" % (sys.version.split()[0], cpy_sign, cpy_crt, cpy_check),
             "| CPython, cryptography (OpenSSL), for scale | %.1f | | |" % ossl, "",
             "Peak heap (smallest `-X heapsize` by bisection, 1 KB steps, unix port): importing `mindconnect.rsa` "
             "and loading the key needs %dK, signing once after that %dK, so **a signature's own peak is about "
             "%d KB** (its integers are 200 to 800 bytes each, and the check with the 3072-bit modulus is the "
             "widest step). The agent loads the module and the key only to sign and drops both afterwards; a "
             "SHARED_SECRET node never imports it." % (load_kb, sign_kb, sign_kb - load_kb), ""]
    if mhz:
        low, high = esp32_estimate(mpy_crt, mpy_check, mhz)
        lines += ["**ESP32 estimate (not measured): %.1f to %.1f s per signature** at %d MHz. Reasoning: "
                  "MicroPython's big integers use %d-bit digits on x86-64 and %d-bit digits on 32-bit ports "
                  "(`MPZ_DIG_SIZE` in py/mpz.h); multiplication and the division that reduces modulo p or q are "
                  "schoolbook, so their cost grows with the square of the digit count: %dx the digit operations "
                  "on the ESP32 for the same numbers. Square-and-multiply does the same number of big-integer "
                  "operations on both. This machine spends %.0f million cycles (%.0f MHz) on the exponentiations "
                  "and the check; times %d, at 1x to 2x the cycles per digit operation (an in-order core, but "
                  "with a one-cycle 16x16 multiply and single-cycle internal SRAM), over %d MHz. Interpreter "
                  "overhead is negligible here: the signature is a handful of `pow` calls spending their time in "
                  "C. The agent signs once per access token (about hourly) and keeps the token on flash, so this "
                  "is a few seconds of CPU an hour, never in a loop; the default watchdog_ms (60 s) covers it."
                  % (low, high, ESP32_MHZ, HOST_DIGIT_BITS, ESP32_DIGIT_BITS,
                     (HOST_DIGIT_BITS // ESP32_DIGIT_BITS) ** 2, (mpy_crt + mpy_check) / 1000 * mhz,
                     mhz, (HOST_DIGIT_BITS // ESP32_DIGIT_BITS) ** 2, ESP32_MHZ)]
    return "\n".join(lines)
