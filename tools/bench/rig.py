"""The bench rig: the mock hub in-process, an onboarded template store, data files, and MicroPython runs.

Every MicroPython run gets a fresh copy of the template store (onboarded, data model sent, token kept),
so a run measures its own workload and nothing of the previous one. A run is "plain" (device files as
.mpy on the filesystem, loaded into the heap) or "rom" (device form: lib/, firmware/ and the workload
executed in place from a ROMFS image, as frozen code on a board; see tools/romform.py).
"""

import json
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tools import build, romform
from tools.bench import util

SCRIPT = Path(__file__).with_name("mpy_workload.py")
FILE_SIZES = (10 * 1000, 1000 * 1000, 10 * 1000 * 1000)  # 10 MB is decimal: the body limit is 10 MiB


class Rig:
    def __init__(self, out_dir):
        from tools.mockhub import MockHub
        self.out_dir = Path(out_dir)
        self.work = Path(tempfile.mkdtemp(prefix="mcbench"))
        self.hub = MockHub(self.work / "hub").start()
        self.scripts = self.work / "scripts"
        errors = build.compile_files(build.device_sources(), self.out_dir)
        errors += build.compile_files([(SCRIPT, Path(SCRIPT.name))], self.scripts)
        errors += build.compile_files([(romform.BOOT, Path(romform.BOOT.name))], self.scripts)
        if errors:
            raise RuntimeError("\n".join(errors))
        self.env = util.mpy_env(self.out_dir, extra=[self.scripts])
        self.image = romform.build_image(self.out_dir, self.work / "bench.romfs", extra=[("bench", self.scripts)])
        self.template = self.work / "template"
        self._onboard(self.template)
        self.files = {}
        for n in FILE_SIZES:
            path = self.work / ("data%d.bin" % n)
            with open(path, "wb") as f:
                chunk = bytes(range(256)) * 256
                left = n
                while left:
                    f.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))
            self.files[n] = path
        self.sink = TLSSink(self.hub.tls.server_pem_path)
        self._runs = 0

    def _onboard(self, folder):
        """Onboard an agent from CPython (the same lib/) and send its data model: the template store."""
        sys.path.insert(0, str(util.ROOT / "lib"))
        from mindconnect import agent, items
        from mindconnect.transport import Transport
        from tools.bench.mpy_workload import DESC
        created = self.hub.create_agent()
        self.client_id = created["client_id"]
        a = agent.Agent(str(folder), Transport(ca_der=self.hub.ca_der).connect,
                        onboarding_key=created["onboarding_key_json"])
        a.sync_model(items.DataModel(DESC))
        a.close()

    def _node_flash(self, flash):
        """A provisioned sim board's flash: config.json, secrets.json (a fresh agent's key), ca.der."""
        flash.mkdir()
        cfg = {"sensors": [{"type": "sim", "name": "room", "points": [
            {"id": "t", "name": "Temperature", "unit": "C"}, {"id": "h", "quantity": "humidity", "unit": "%"}]}],
            "sample_s": 10, "upload_s": 60, "safe_pin": None, "log_level": "warning",
            "rules": [{"point": "t", "above": 0, "severity": 1}], "spool": {"flush_every": 1}}
        (flash / "config.json").write_text(json.dumps(cfg))
        (flash / "secrets.json").write_text(json.dumps({"onboarding_key": self.hub.create_agent()["onboarding_key"]}))
        shutil.copy(self.hub.ca_der_path, flash / "ca.der")

    def run(self, name, heap_kb, size=0, data="", form="plain"):
        """Run one workload at -X heapsize=heap_kb K (in ROM form: that much heap left besides the image);
        (passed, milliseconds or None, output)."""
        self._runs += 1
        store = self.work / ("run%d" % self._runs)
        key = self.work / "key.json"
        if name == "node":
            self._node_flash(store)
        else:
            shutil.copytree(self.template, store)
        if name == "cycle":
            key.write_text(self.hub.create_agent()["onboarding_key_json"])
            shutil.rmtree(store)
        args = ["-m", "mpy_workload", name, str(size), str(store), str(self.hub.ca_der_path), str(key),
                str(data), str(self.sink.port)]
        env = self.env
        if form == "rom":
            cmd, extra = romform.command(util.micropython(), "%dK" % heap_kb, args, self.image,
                                         ("/rom/lib", "/rom", "/rom/bench"))
            env = dict(util.mpy_env(self.out_dir, extra=[self.scripts]), **extra)
            env["MICROPYPATH"] = str(self.scripts)  # romboot only: the code comes from the image
        else:
            cmd = util.micropython_cmd("%dK" % heap_kb) + args
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=str(self.work))
        finally:
            shutil.rmtree(store, ignore_errors=True)
        out = proc.stdout + proc.stderr
        ms = None
        for line in proc.stdout.splitlines():
            if line.startswith("@@MS"):
                ms = int(line.split()[1])
        return proc.returncode == 0 and "@@OK" in proc.stdout, ms, out

    def close(self):
        self.sink.close()
        self.hub.stop()
        shutil.rmtree(self.work, ignore_errors=True)


class TLSSink:
    """A TLS server on 127.0.0.1 that reads every connection to its end and throws the bytes away."""

    def __init__(self, cert_pem):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert_pem))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        buf = bytearray(65536)
        while True:
            try:
                plain, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(plain, server_side=True) as conn:
                    while True:
                        n = conn.recv_into(buf)
                        if not n:
                            break
                        self.received += n
            except (OSError, ssl.SSLError):
                plain.close()

    def close(self):
        self.sock.close()
