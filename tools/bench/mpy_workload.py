"""One benchmark workload in a fresh interpreter (compiled with mpy-cross, run by the MicroPython unix port).

    micropython -X heapsize=NK -m mpy_workload NAME SIZE STORE CA_DER KEY_FILE DATA_PATH RAW_PORT

Prints "@@OK" (and "@@MS <ms>" for timed work) only when the workload fully succeeded, so the host can
bisect over the heap size: a MemoryError or any failure leaves "@@OK" out. Names:
import, jwt, token (an onboarded store, forced token call), readings (SIZE readings exchanged),
file (the file DATA_PATH exchanged), cycle (onboard, token, DSC, 100 readings, the file, an event, with
the key in KEY_FILE), node (firmware/app.py on the simulated board whose flash is STORE, provisioned by
the rig: boot-time config check, 13 samples, onboarding, data model, 3 uploads with telemetry and an
event), raw (DATA_PATH written to a TLS sink on RAW_PORT without our stack), cpu (SIZE readings
encoded, then spooled into a new spool at STORE; runs on CPython too).
"""

import gc
import sys
import time

T0 = 1764050571000
DESC = {"configurationId": "cfg-bench", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "temp", "name": "Temperature", "type": "DOUBLE", "unit": "C"}]}]}


def readings(n):
    i = 0
    while i < n:
        yield T0 + i * 1000, (("temp", 20.5),)
        i += 1


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def new_agent(store, ca, key=None):
    from mindconnect import agent
    from mindconnect.transport import Transport
    return agent.Agent(store, Transport(ca_der=read_file(ca)).connect, onboarding_key=key)


def sent_all(report, readings_=0):
    from mindconnect.agent import SENT
    ok = all(o.status == SENT for o in report.outcomes)
    return ok and report.count(SENT) == readings_ and not report.invalid


def raw_write(path, ca, port):
    """The file's bytes over a bare TLS socket: the floor our stack is compared with."""
    import socket
    try:
        import tls
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED
        ctx.load_verify_locations(read_file(ca))
    except ImportError:
        import ssl
        ctx = ssl.create_default_context(cadata=read_file(ca))
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    s = ctx.wrap_socket(sock, server_hostname="localhost")
    buf = bytearray(4096)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            s.write(mv[:n])
    s.close()
    return True


def cpu_per_reading(n, folder):
    """Microseconds per reading to encode it, and to append the encoded record to a spool (default policy)."""
    from mindconnect import items
    from mindconnect.spool import Spool
    enc = items.RecordEncoder(items.DataModel(DESC))
    values = (("temp", 20.5),)
    t = ticks_us()
    i = 0
    while i < n:
        rec = enc.encode(T0 + i, values)
        i += 1
    encode_us = ticks_us() - t
    sp = Spool(folder, max_bytes=4 * 1024 * 1024)
    t = ticks_us()
    i = 0
    while i < n:
        sp.append(rec)
        i += 1
    spool_us = ticks_us() - t
    sp.close()
    print("@@US", encode_us * 1000 // n, spool_us * 1000 // n)  # nanoseconds per reading
    return True


def node_cycle(flash):
    """The whole node for 125 simulated seconds (sample every 10 s, upload every 60 s) on a fake clock."""
    from firmware import app, config
    from firmware.boards import sim
    now = [int(time.time()) * 1000]  # near the real time: the hub checks JWT times against its clock

    def sleep(ms):
        now[0] += ms

    board = sim.SimBoard(flash, lambda: now[0], sleep, sim.SimState())
    node = app.App(board, config.load(flash), log=lambda m: None)
    node.follow_gateway_clock = False  # fake time here: the hub's Date (real time) would set it back
    end = now[0] + 125000
    while now[0] < end:
        node.wait(min(node.step(), end - now[0]))
    node.close()
    return node.uploads == 3 and node.upload_failures == 0 and node.readings.pending() == 0


def ticks_us():
    return time.ticks_us() if hasattr(time, "ticks_us") else int(time.perf_counter() * 1000000)


def ticks_ms():
    return time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.monotonic() * 1000)


def main():
    name, size, store, ca, key_file, data, raw_port = sys.argv[1:8]
    size = int(size)
    gc.collect()
    t = ticks_ms()
    if name == "import":
        from mindconnect import agent, http, items, transport  # noqa: F401
        ok = True
    elif name == "jwt":
        from mindconnect import jwt
        ok = len(jwt.client_assertion("c" * 36, "mocktenant", "s" * 44, 1764050571)) > 100
    elif name == "token":
        a = new_agent(store, ca)
        ok = bool(a.authorize(force=True))
    elif name in ("readings", "file"):
        from mindconnect import items
        a = new_agent(store, ca)
        a.model = items.DataModel(DESC)
        gc.collect()
        t = ticks_ms()
        if name == "readings":
            ok = sent_all(a.exchange(timeseries=readings(size)), size)
        else:
            ok = sent_all(a.exchange([items.file_item(data, T0)]))
    elif name == "cycle":
        from mindconnect import items
        a = new_agent(store, ca, read_file(key_file).decode())
        a.sync_model(items.DataModel(DESC))
        ev = items.event_record(2, "temp above 30", "ThresholdViolation", T0, "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
        ok = sent_all(a.exchange([items.event_item([ev]), items.file_item(data, T0)], timeseries=readings(size)),
                      size)
    elif name == "node":
        ok = node_cycle(store)
    elif name == "cpu":
        ok = cpu_per_reading(size, store)
    elif name == "raw":
        ok = raw_write(data, ca, int(raw_port))
    else:
        raise ValueError("unknown workload " + name)
    took = ticks_ms() - t
    if ok:
        print("@@MS", took)
        print("@@OK")


if __name__ in ("__main__", "mpy_workload"):  # "mpy_workload": run by tools/romboot.py (ROM form)
    main()
