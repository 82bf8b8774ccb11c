"""PNG screenshots of the dashboard with headless Chromium (Debian's `chromium` package)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """Path of a Chromium executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def capture(url, out_png, width=1280, height=1600, timeout=60):
    """Render url in headless Chromium and write a PNG; RuntimeError with the reason when it cannot."""
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("Chromium not found: install it (Debian: apt-get install chromium)")
    out_png = Path(out_png).resolve()
    with tempfile.TemporaryDirectory(prefix="mockhub-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height),
               "--screenshot=" + str(out_png), url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out_png.exists() or out_png.stat().st_size == 0:
        raise RuntimeError("Chromium could not take the screenshot (exit %d): %s"
                           % (proc.returncode, proc.stderr.strip()[-500:]))
    return out_png
