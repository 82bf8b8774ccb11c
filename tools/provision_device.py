# Device side of tools/provision.py: sent to the board as source over the raw REPL and run there
# (MicroPython), never imported on the host. Each helper prints one result line "@@<json>" that the
# host parses; nothing here ever prints a secret. Kept small: a board compiles it from source.
import gc
import hashlib
import json
import os
import sys

_pv_buf = bytearray(512)
_pv_f = None
_pv_path = None
_pv_loaded = list(sys.modules)


def _pv_out(doc):
    print("@@" + json.dumps(doc))


def _pv_facts():
    import time
    st = os.statvfs("/")
    spool = []
    _pv_walk("/spool", spool)
    gc.collect()
    sizes = [(p, os.stat(p)[6]) for p in spool]
    _pv_out({"spool": sum(n for p, n in sizes),
             "queued": {k: sum(n for p, n in sizes if p.startswith("/spool/%s/" % k)) for k in ("ts", "ev")},
             "version": list(sys.implementation.version[:3]), "mpy": getattr(sys.implementation, "_mpy", 0),
             "machine": getattr(sys.implementation, "_machine", sys.platform), "block": st[0],
             "total": st[0] * st[2], "free": st[0] * st[3], "heap_free": gc.mem_free(),
             "time": time.time(), "image": _pv_image()})


def _pv_image():
    # {package: path} of our packages that the firmware image carries (frozen, or a ROMFS partition):
    # found on sys.path without the flash's own entries, and forgotten again
    found = {}
    path = sys.path[:]
    sys.path[:] = [p for p in path if p not in ("", "/", "/lib")]
    try:
        for name in ("mindconnect", "firmware"):
            had = sys.modules.pop(name, None)
            try:
                found[name] = __import__(name).__path__
            except ImportError:
                pass
            sys.modules.pop(name, None)
            if had is not None:
                sys.modules[name] = had
    finally:
        sys.path[:] = path
    return found


def _pv_sha(path):
    h = hashlib.sha256()
    mv = memoryview(_pv_buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(_pv_buf)
            if not n:
                break
            h.update(mv[:n])
    return "".join("%02x" % b for b in h.digest())


def _pv_walk(top, out):
    try:
        entries = list(os.ilistdir(top))
    except OSError:
        return
    for e in entries:
        p = top + "/" + e[0]
        if e[1] == 0x4000:
            _pv_walk(p, out)
        else:
            out.append(p)


def _pv_state(paths, trees):
    """{path: [size, sha256 hex]} for the given paths and every file under the trees (missing: absent)."""
    found = []
    for t in trees:
        _pv_walk(t.rstrip("/"), found)
    res = {}
    for p in list(paths) + found:
        try:
            res[p] = [os.stat(p)[6], _pv_sha(p)]
        except OSError:
            pass
    _pv_out(res)


def _pv_json(paths):
    res = {}
    for p in paths:
        try:
            with open(p) as f:
                res[p] = json.load(f)
        except (OSError, ValueError):
            pass
    _pv_out(res)


def _pv_mkdirs(path):
    cut = path.rfind("/")
    parts = path[:cut].split("/") if cut > 0 else []
    cur = ""
    for part in parts:
        if not part:
            continue
        cur += "/" + part
        try:
            os.mkdir(cur)
        except OSError:
            pass


def _pv_open(path):
    global _pv_f, _pv_path
    _pv_mkdirs(path)
    _pv_path = path
    _pv_f = open(path + ".tmp", "wb")


def _pv_w(b64):
    import binascii
    _pv_f.write(binascii.a2b_base64(b64))


def _pv_close():
    """Flush, then rename the temp file into place (atomic on littlefs); FAT cannot rename over a file."""
    global _pv_f
    _pv_f.flush()
    _pv_f.close()
    _pv_f = None
    try:
        os.rename(_pv_path + ".tmp", _pv_path)
    except OSError:
        os.remove(_pv_path)
        os.rename(_pv_path + ".tmp", _pv_path)
    _pv_out(_pv_sha(_pv_path))


def _pv_remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
    # and the folders of our code left empty: an empty /firmware is still a package to import, found
    # before the one a firmware image carries
    d = path.rsplit("/", 1)[0]
    while d.startswith(("/firmware", "/lib/mindconnect")):
        try:
            os.rmdir(d)
        except OSError:
            break
        d = d.rsplit("/", 1)[0]
    _pv_out(path)


def _pv_selftest(modules, gateway, ca_file):
    """Imports, config, clock and (when the gateway answers) verified TLS; one [name, status, detail] each."""
    res = []
    failed = []
    least = None
    # our packages as boot.py loaded them before this run changed or removed their files: the check is
    # of the code the board runs at its next start
    for name in [k for k in sys.modules if k.split(".")[0] in ("firmware", "mindconnect")]:
        del sys.modules[name]
    _pv_loaded[:] = [k for k in _pv_loaded if k in sys.modules]
    for m in modules:
        # one at a time, each dropped again: the check is that every module loads, not all at once
        try:
            __import__(m)
            gc.collect()
            free = gc.mem_free()
            least = free if least is None or free < least else least
        except Exception as e:
            failed.append("%s (%s: %s)" % (m, type(e).__name__, e))
        for name in [k for k in sys.modules if k not in _pv_loaded]:
            del sys.modules[name]
        gc.collect()
    res.append(["imports", "FAIL" if failed else "PASS",
                "cannot import " + "; ".join(failed) if failed else "%d modules, at least %d bytes of heap free"
                % (len(modules), least or 0)])
    try:
        from firmware import config
        c = config.load("/")
        res.append(["config", "PASS", "%d sensors, %d warnings" % (len(c.sensors), len(c.warnings))])
    except Exception as e:
        res.append(["config", "FAIL", "%s: %s" % (type(e).__name__, e)])
    import time

    from mindconnect.compat import EPOCH_OFFSET
    now = int(time.time()) + EPOCH_OFFSET
    res.append(["clock", "PASS" if time.gmtime()[0] >= 2024 else "WARN", now])
    res.append(_pv_tls(gateway, ca_file))
    _pv_out(res)


def _pv_tls(gateway, ca_file):
    if not gateway:
        return ["tls", "SKIP", "no gateway configured"]
    from mindconnect.errors import TLSError
    from mindconnect.transport import Transport
    hostport = gateway[8:].split("/")[0]
    host, port = hostport, 443
    if ":" in hostport:
        host, port = hostport.rsplit(":", 1)
        port = int(port)
    try:
        with open(ca_file, "rb") as f:
            ca = f.read()
        Transport(ca).connect(host, port, 8000).close()
    except TLSError as e:
        return ["tls", "FAIL", str(e)]
    except Exception as e:
        return ["tls", "SKIP", "gateway not reachable from the board now (%s)" % e]
    return ["tls", "PASS", "certificate of %s:%d verified" % (host, port)]
