# tools/provision.py against virtual boards (the real unix port behind a pty, the real mpremote) and the
# mock hub over real TLS: from nothing to a provisioned, onboarded board; nothing copied when nothing
# changed; every bad input refused with a clear message before the board's files are touched.
import json
import subprocess
import sys
import time
from pathlib import Path

import mpyharness
import pytest

from tools import provision
from tools import provision_bundle as pb
from tools.mockhub import MockHub
from tools.virtual_board import VirtualBoard

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = MockHub(tmp_path_factory.mktemp("hub")).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def inputs(hub, tmp_path_factory):
    """An onboarding key file, the hub's CA as PEM, and a Wi-Fi password file."""
    d = tmp_path_factory.mktemp("inputs")
    key = hub.create_agent(name="node-1")
    (d / "key.json").write_text(key["onboarding_key_json"])
    (d / "wifi.txt").write_text("wifi-pass-never-printed\n")
    return {"dir": d, "key": str(d / "key.json"), "key_doc": key, "ca": str(hub.ca_pem_path),
            "wifi": str(d / "wifi.txt")}


class Run:
    """provision.main in this process, its output collected."""

    def __init__(self, *argv):
        self.lines = []
        self.rc = provision.main([str(a) for a in argv], say=self.lines.append)
        self.text = "\n".join(self.lines)


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def base_args(port, inputs, *extra):
    return (port, "--ca", inputs["ca"], "--wifi-ssid", "plant", "--wifi-password-file", inputs["wifi"]) + extra


def assert_no_secrets(text, inputs):
    assert "wifi-pass-never-printed" not in text
    assert inputs["key_doc"]["onboarding_key"]["content"]["iat"] not in text


def test_help_shows_examples():
    proc = subprocess.run([sys.executable, "-m", "tools.provision", "--help"], capture_output=True, text=True,
                          cwd=str(ROOT), timeout=60)
    assert proc.returncode == 0
    assert "python -m tools.provision /dev/ttyUSB0 --key" in proc.stdout
    assert "--fleet" in proc.stdout and "--dry-run" in proc.stdout


def test_from_nothing_then_nothing_to_copy(vboard, inputs, hub):
    mpyharness.require_micropython()
    dry = Run(*base_args(vboard.port, inputs, "--key", inputs["key"], "--dry-run"))
    assert dry.rc == 0, dry.text
    assert "would copy /lib/mindconnect/agent.mpy" in dry.text
    assert snapshot(vboard.flash_dir) == {}, "a dry run wrote to the board"

    first = Run(*base_args(vboard.port, inputs, "--key", inputs["key"]))
    assert first.rc == 0, first.text
    flash = snapshot(vboard.flash_dir)
    bundle = pb.bundle_files()
    for board_path, host_path in bundle.items():
        assert flash[board_path] == Path(host_path).read_bytes(), board_path
    assert flash["ca.der"] == hub.ca_der  # PEM given, DER written
    assert abs(int(flash["agent/time"]) - time.time()) < 300  # the board clock's lower bound after a cut
    cfg = json.loads(flash["config.json"])
    assert cfg["wifi"]["ssid"] == "plant" and cfg["gateway"] == hub.base_url and cfg["ca_file"] == "ca.der"
    secrets = json.loads(flash["secrets.json"])
    assert secrets["wifi_password"] == "wifi-pass-never-printed"
    assert secrets["onboarding_key"] == inputs["key_doc"]["onboarding_key"]
    assert not [p for p in flash if p.endswith(".tmp")]
    for check in ("imports", "config", "clock"):
        assert any(line.split()[:2] == [check, "PASS"] for line in first.lines), first.text
    assert any(line.split()[:2] == ["tls", "PASS"] for line in first.lines), first.text  # real TLS to the hub
    assert_no_secrets(first.text, inputs)

    # the board's own lower bound is newer than the host's at any later run: it is kept
    (Path(vboard.flash_dir) / "agent/time").write_text("4102444800")
    flash = snapshot(vboard.flash_dir)
    again = Run(*base_args(vboard.port, inputs, "--key", inputs["key"]))
    assert again.rc == 0, again.text
    assert "plan: 0 of %d files to copy" % (len(bundle) + 3) in again.text
    assert snapshot(vboard.flash_dir) == flash

    one = Run(*base_args(vboard.port, inputs, "--key", inputs["key"], "--set", "sample_s=30"))
    assert one.rc == 0, one.text
    assert "plan: 1 of" in one.text and "/config.json" in one.text
    assert json.loads((Path(vboard.flash_dir) / "config.json").read_text())["sample_s"] == 30


def test_stale_sources_are_removed_so_they_cannot_shadow_mpy(vboard, inputs):
    mpyharness.require_micropython()
    src = Run(*base_args(vboard.port, inputs, "--no-mpy", "--no-selftest"))
    assert src.rc == 0, src.text
    assert (Path(vboard.flash_dir) / "lib/mindconnect/agent.py").exists()
    mpy = Run(*base_args(vboard.port, inputs, "--no-selftest"))
    assert mpy.rc == 0, mpy.text
    left = [p for p in snapshot(vboard.flash_dir) if p.startswith(("lib/", "firmware/")) and p.endswith(".py")]
    assert left == []
    assert "removed /lib/mindconnect/agent.py" in mpy.text


def test_onboard_prints_client_id_and_deletes_the_key(vboard, inputs, hub, tmp_path):
    mpyharness.require_micropython()
    key = hub.create_agent(name="node-onboard")
    (tmp_path / "key.json").write_text(key["onboarding_key_json"])
    run = Run(*base_args(vboard.port, inputs, "--key", tmp_path / "key.json", "--onboard"))
    assert run.rc == 0, run.text
    assert "onboarded: client id %s" % key["client_id"] in run.text
    assert hub.agent_state(key["client_id"])["onboarded"]
    secrets = json.loads((Path(vboard.flash_dir) / "secrets.json").read_text())
    assert "onboarding_key" not in secrets and secrets["wifi_password"] == "wifi-pass-never-printed"
    assert key["onboarding_key"]["content"]["iat"] not in run.text


def _expired(inputs, tmp_path):
    doc = dict(inputs["key_doc"]["onboarding_key"], expiration="2020-01-01T00:00:00.000Z")
    (tmp_path / "expired.json").write_text(json.dumps(doc))
    return tmp_path / "expired.json"


@pytest.mark.parametrize("case,message", [
    ("missing", "file not found"),
    ("not json", "not valid JSON"),
    ("no iat", "content.iat is missing"),
    ("expired", "expired on 2020-01-01"),
])
def test_bad_onboarding_key_is_refused_and_the_board_left_as_it_was(vboard, inputs, tmp_path, case, message):
    mpyharness.require_micropython()
    if case == "missing":
        key = tmp_path / "nothing-here.json"
    elif case == "not json":
        key = tmp_path / "k.json"
        key.write_text("{content: oops")
    elif case == "no iat":
        doc = json.loads(json.dumps(inputs["key_doc"]["onboarding_key"]))
        del doc["content"]["iat"]
        key = tmp_path / "k.json"
        key.write_text(json.dumps(doc))
    else:
        key = _expired(inputs, tmp_path)
    before = snapshot(vboard.flash_dir)
    run = Run(*base_args(vboard.port, inputs, "--key", key))
    assert run.rc == 1
    assert message in run.text and "FAILED" in run.text
    assert snapshot(vboard.flash_dir) == before
    assert_no_secrets(run.text, inputs)


def test_a_config_whose_data_model_the_board_would_refuse(vboard, inputs, tmp_path):
    # config.json's own rules pass; the data model built from it at every start would raise ConfigError
    # and stop the node at the machine: refused here, before anything is written
    mpyharness.require_micropython()
    cfg = json.loads(json.dumps(pb.DEFAULT_TEMPLATE))
    cfg["sensors"][0]["points"] = [{"id": "t0"}, {"id": "node_uptime"}]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    before = snapshot(vboard.flash_dir)
    run = Run(*base_args(vboard.port, inputs, "--key", inputs["key"], "--config", tmp_path / "config.json"))
    assert run.rc == 1
    assert ("config.json would be refused by the board: data point node_uptime (sensor demo) is one of the node's "
            "own telemetry points (node_free_heap, ") in run.text, run.text
    assert snapshot(vboard.flash_dir) == before


def test_a_spool_too_small_for_one_reading_and_a_short_watchdog_are_refused(tmp_path):  # and a floating safe pin
    """A readings spool takes segments that hold the largest reading of the data model, two at least:
    below that the board raised ConfigError at every start (the app stopped at the REPL). A watchdog
    shorter than what the node cannot feed it through (1000 ms passes the board's check) reset it in
    a loop into safe mode."""
    from mindconnect.errors import ConfigError
    from mindconnect.spool import Spool

    cfg = json.loads(json.dumps(pb.DEFAULT_TEMPLATE))
    cfg["gateway"] = "https://gateway.example"
    cfg["sensors"][0]["points"] = [{"id": "a_rather_long_data_point_id_%02d" % i} for i in range(30)]
    cfg["spool"] = {"max_bytes": 4096}
    with pytest.raises(pb.ProvisionError) as e:
        pb.validate_config(cfg, {})
    text = str(e.value)
    assert "spool.max_bytes 4096 is too small for the readings of this data model (37 data points" in text, text
    need = int(text.rsplit("make it ", 1)[1].split()[0])
    cfg["spool"]["max_bytes"] = need
    pb.validate_config(cfg, {})
    # the board's own rule, as firmware/app.py sizes the segments: the figure is its boundary
    Spool(str(tmp_path / "ok"), need, segment_bytes=need // 2).close()
    with pytest.raises(ConfigError):
        Spool(str(tmp_path / "short"), need - 1, segment_bytes=need // 2)

    cfg = json.loads(json.dumps(pb.DEFAULT_TEMPLATE))
    cfg["gateway"] = "https://gateway.example"
    cfg["watchdog_ms"] = 5000
    with pytest.raises(pb.ProvisionError, match="refused by the board: watchdog_ms: 5000 ms is shorter than a wait "
                                                "for the gateway"):
        pb.validate_config(cfg, {})
    for ok in (0, 45000):
        cfg["watchdog_ms"] = ok
        pb.validate_config(cfg, {})

    # an input-only ESP32 pin as the safe pin: no pull-up, it floats (said, not refused: a board may have one)
    cfg["safe_pin"] = 36
    assert pb.validate_config(cfg, {}) == [
        "safe_pin GPIO 36 has no internal pull-up on the ESP32: without a resistor to 3.3 V it floats, and a low "
        "level at a boot holds the node in safe mode until someone comes; use GPIO 0 (the default) or another pin "
        "with a pull-up"]
    cfg["safe_pin"] = 0
    assert pb.validate_config(cfg, {}) == []


@pytest.mark.parametrize("settings,message", [
    ({"mode": "deep-sleep", "sample_s": 2147484, "upload_s": 2147484}, "sample_s: 2147484 is out of range; use "
                                                                      "1..2147483"),
    ({"wifi": {"ssid": "plant", "backoff_max_s": 536871}}, "wifi.backoff_max_s: 536871 is out of range; use "
                                                           "1..536870"),
])
def test_times_an_esp32_cannot_count_are_refused(settings, message):
    """An ESP32 raised OverflowError at every wake beyond what a machine word holds: the board's check
    refuses it, and provisioning with it. The largest that fits passes."""
    cfg = dict(json.loads(json.dumps(pb.DEFAULT_TEMPLATE)), gateway="https://gateway.example", **settings)
    with pytest.raises(pb.ProvisionError, match=message):
        pb.validate_config(cfg, {"wifi_password": "x"})
    for k, v in settings.items():
        if isinstance(v, int):
            cfg[k] = v - 1
        elif "backoff_max_s" in v:
            v["backoff_max_s"] -= 1
    pb.validate_config(cfg, {"wifi_password": "x"})


def test_a_port_that_does_not_exist(inputs):
    run = Run(*base_args("/dev/ttyNOPE7", inputs))
    assert run.rc == 1
    assert "serial port /dev/ttyNOPE7 does not exist" in run.text


@pytest.mark.parametrize("board_kw,message", [
    ({"flash_size": 192 * 1024}, "not enough free flash"),
    ({"pretend_version": (1, 22, 2, "")}, "MicroPython 1.22.2 on the board is too old"),
])
def test_unfit_board_is_refused_before_anything_is_written(inputs, tmp_path, board_kw, message):
    mpyharness.require_micropython()
    (tmp_path / "main.py").write_text("print('the user program')\n")
    before = snapshot(tmp_path)
    with VirtualBoard(tmp_path, **board_kw) as board:
        run = Run(*base_args(board.port, inputs, "--key", inputs["key"]))
    assert run.rc == 1
    assert message in run.text, run.text
    assert snapshot(tmp_path) == before


def test_fleet_provisions_each_board_and_sums_up(inputs, tmp_path):
    mpyharness.require_micropython()
    (tmp_path / "fleet.csv").write_text("port,name,key\n{port},good-node,{key}\n/dev/ttyNOPE8,lost-node,\n")
    with VirtualBoard(tmp_path / "flash") as board:
        csv_text = (tmp_path / "fleet.csv").read_text().format(port=board.port, key=inputs["key"])
        (tmp_path / "fleet.csv").write_text(csv_text)
        run = Run("--fleet", tmp_path / "fleet.csv", "--ca", inputs["ca"], "--no-selftest")
    assert run.rc == 1  # one board failed
    table = run.lines[run.lines.index("") + 1:]
    assert table[0].split()[:4] == ["name", "port", "result", "copied"]
    good = [r for r in table if r.startswith("good-node")][0].split()
    lost = [r for r in table if r.startswith("lost-node")][0].split()
    assert good[2] == "ok" and int(good[3]) > 20
    assert lost[2] == "FAILED" and "does not exist" in " ".join(lost)


def test_ca_pem_and_der_both_give_der(hub, tmp_path):
    assert pb.ca_der(hub.ca_pem_path) == hub.ca_der
    assert pb.ca_der(hub.ca_der_path) == hub.ca_der
    (tmp_path / "junk.crt").write_text("hello")
    with pytest.raises(pb.ProvisionError, match="neither PEM nor DER"):
        pb.ca_der(tmp_path / "junk.crt")
    # a bundle of the root and its successor: both, as DER one after the other (the board trusts each)
    pem = hub.ca_pem_path.read_bytes()
    (tmp_path / "two.pem").write_bytes(pem + pem.replace(b"\n", b"\r\n"))
    assert pb.ca_der(tmp_path / "two.pem") == hub.ca_der * 2
    (tmp_path / "store.pem").write_bytes(pem * 5)
    with pytest.raises(pb.ProvisionError, match="5 certificates, at most 4"):
        pb.ca_der(tmp_path / "store.pem")


def test_mpy_version_mismatch_is_refused():
    facts = {"version": [1, 24, 0], "mpy": 5}
    with pytest.raises(pb.ProvisionError, match="reads .mpy version 5 but mpy-cross made version 6"):
        provision.check_runtime(facts, (6, 0))
    provision.check_runtime(facts, None)  # --no-mpy: sources run on any 1.23+


def test_provisioned_virtual_board_sends_readings_to_the_hub(hub, inputs, tmp_path):
    """Flash, provision, forget: the board's main.py starts after provisioning and readings arrive."""
    mpyharness.require_micropython()
    if not (ROOT / "main.py").exists() or not (ROOT / "firmware" / "app.py").exists():
        pytest.skip("main.py and firmware/app.py are not in the repository yet")
    import time
    key = hub.create_agent(name="node-e2e")
    (tmp_path / "key.json").write_text(key["onboarding_key_json"])
    with VirtualBoard(tmp_path / "flash", run_main=True) as board:
        run = Run(board.port, "--ca", inputs["ca"], "--key", tmp_path / "key.json", "--onboard",
                  "--set", "board=sim", "--set", "sample_s=1", "--set", "upload_s=1")
        assert run.rc == 0, run.text
        deadline = time.monotonic() + 60
        while not hub.timeseries(key["client_id"]) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the hub with a deadline, not waiting for a fixed time
    assert hub.timeseries(key["client_id"]), "no readings arrived within 60 s:\n" + run.text


def test_rsa_agent_gets_keys_made_here_and_sends_readings(hub, inputs, tmp_path):
    """RSA_3072: provisioning makes the key (and the next one) on the host, writes only the board's key
    files, prints key ids but no key material, keeps the keys when run again; the board onboards with
    the key and sends readings."""
    mpyharness.require_micropython()
    import base64
    import time

    from tools.rsakey import MAGIC
    key = hub.create_agent(name="node-rsa", profile="RSA_3072")
    (tmp_path / "key.json").write_text(key["onboarding_key_json"])
    flash = tmp_path / "flash"
    with VirtualBoard(flash, run_main=True) as board:
        run = Run(board.port, "--ca", inputs["ca"], "--key", tmp_path / "key.json", "--onboard", "--rsa-next",
                  "--set", "board=sim", "--set", "sample_s=1", "--set", "upload_s=1")
        assert run.rc == 0, run.text
        keys = {n: (flash / "agent" / n).read_bytes() for n in ("rsa_key", "rsa_next")}
        kids = {n: raw[len(MAGIC) + 1:len(MAGIC) + 1 + raw[len(MAGIC)]].decode() for n, raw in keys.items()}
        assert "RSA key %s made on this computer for /agent/rsa_key" % kids["rsa_key"] in run.text
        assert "RSA key %s made on this computer for /agent/rsa_next" % kids["rsa_next"] in run.text
        assert hub.agent_state(key["client_id"])["key_id"] == kids["rsa_key"]
        for raw in keys.values():  # no piece of a private key on screen, in hex or base64
            for piece in (raw[500:524], raw[900:924]):
                assert piece.hex() not in run.text.lower() and base64.b64encode(piece).decode() not in run.text
        deadline = time.monotonic() + 60
        while not hub.timeseries(key["client_id"]) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the hub with a deadline, not waiting for a fixed time
        assert hub.timeseries(key["client_id"]), "no readings arrived within 60 s:\n" + run.text
        again = Run(board.port, "--ca", inputs["ca"], "--key", tmp_path / "key.json", "--rsa-next",
                    "--set", "board=sim", "--set", "sample_s=1", "--set", "upload_s=1", "--no-restart")
        assert again.rc == 0, again.text
        assert "the board keeps its RSA key /agent/rsa_key" in again.text and "made on this computer" not in again.text
        assert {n: (flash / "agent" / n).read_bytes() for n in keys} == keys


def test_a_second_run_without_ca_uses_the_ca_already_on_the_board(inputs, tmp_path):
    """The board got ca.der at its first run; a later run without --ca (e.g. to change one setting) must
    find it there, not refuse with "the board has no ca.der yet"."""
    mpyharness.require_micropython()
    with VirtualBoard(tmp_path / "flash") as board:
        first = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
        assert first.rc == 0, first.text
        ca = (tmp_path / "flash" / "ca.der").read_bytes()
        again = Run(board.port, "--key", inputs["key"], "--wifi-ssid", "plant", "--wifi-password-file",
                    inputs["wifi"], "--set", "sample_s=30", "--no-selftest", "--no-restart")
    assert again.rc == 0, again.text
    assert "plan: 1 of" in again.text, again.text
    assert (tmp_path / "flash" / "ca.der").read_bytes() == ca
    assert json.loads((tmp_path / "flash" / "config.json").read_text())["sample_s"] == 30


def test_changing_one_setting_keeps_the_rest_and_the_secrets(inputs, tmp_path):
    """`provision PORT --set sample_s=30` (the documented one-setting change) copies config.json only:
    the board's gateway, Wi-Fi network, Wi-Fi password and its not yet used onboarding key stay."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    with VirtualBoard(flash) as board:
        first = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
        assert first.rc == 0, first.text
        before_cfg = json.loads((flash / "config.json").read_text())
        before_secrets = (flash / "secrets.json").read_bytes()
        one = Run(board.port, "--set", "sample_s=30", "--no-selftest", "--no-restart")
    assert one.rc == 0, one.text
    assert "plan: 1 of" in one.text, one.text
    assert (flash / "secrets.json").read_bytes() == before_secrets
    assert json.loads((flash / "config.json").read_text()) == dict(before_cfg, sample_s=30)
    assert_no_secrets(one.text, inputs)


def _provision_with_backlog(board, inputs, segments):
    """Provision board, then give it segments of 16 KB of queued readings (as the node's spool leaves them)."""
    first = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
    assert first.rc == 0, first.text
    ts = Path(board.flash_dir) / "spool" / "ts"
    ts.mkdir(parents=True)
    for n in range(1, segments + 1):
        (ts / str(n)).write_bytes(b"r" * 16384)


def test_a_queued_backlog_does_not_make_a_second_run_refuse(inputs, tmp_path):
    """The spool's readings already on the board are part of spool.max_bytes: a re-run on a board
    holding a backlog must not ask for the whole spool's room again on top of it (it refused with
    "delete files from the board", the backlog being the only thing to delete)."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    with VirtualBoard(flash, flash_size=700 * 1024) as board:
        _provision_with_backlog(board, inputs, 15)  # 240 KB, within the default spool.max_bytes (256 KB)
        again = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--set", "sample_s=30",
                               "--no-selftest", "--no-restart"))
    assert again.rc == 0, again.text
    assert "plan: 1 of" in again.text, again.text
    assert len(list((flash / "spool" / "ts").iterdir())) == 15


def test_a_spool_lowered_below_the_queued_backlog_is_refused_unless_asked(inputs, tmp_path):
    """A lower spool.max_bytes than the readings the board holds queued made the node delete the oldest at
    its next sample, with no word from provisioning: refused, the board left as it was, unless the loss
    is accepted with --drop-queued."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    with VirtualBoard(flash, flash_size=700 * 1024) as board:
        _provision_with_backlog(board, inputs, 5)  # 80 KB
        before = snapshot(flash)
        lower = Run(board.port, "--set", "spool.max_bytes=65536", "--no-selftest", "--no-restart")
        assert lower.rc == 1
        assert ("the board holds 80.0 KB of queued readings (/spool/ts), more than spool.max_bytes allows them "
                "(64.0 KB)") in lower.text, lower.text
        assert "keep spool.max_bytes at 81920 or more, or give --drop-queued" in lower.text
        assert snapshot(flash) == before
        enough = Run(board.port, "--set", "spool.max_bytes=81920", "--no-selftest", "--no-restart")
        assert enough.rc == 0, enough.text
        asked = Run(board.port, "--set", "spool.max_bytes=65536", "--drop-queued", "--no-selftest", "--no-restart")
        assert asked.rc == 0, asked.text
    assert json.loads((flash / "config.json").read_text())["spool"]["max_bytes"] == 65536
    assert len(list((flash / "spool" / "ts").iterdir())) == 5  # provisioning itself deletes nothing


def _image(folder, trees):
    """A firmware image's code (as a ROMFS partition holds it) made from this bundle: the given trees."""
    for board_path, host_path in pb.bundle_files().items():
        if board_path.startswith(trees):
            (folder / board_path).parent.mkdir(parents=True, exist_ok=True)
            (folder / board_path).write_bytes(Path(host_path).read_bytes())
    return folder


def test_code_the_firmware_image_carries_is_not_copied_nor_shadowed(inputs, tmp_path):
    """A board whose firmware image carries lib/mindconnect and firmware/ (frozen, or a ROMFS partition
    searched before /lib): copies on its flash would mix versions (/firmware runs before the image's,
    /lib/mindconnect never runs). They are not copied, those already there are removed, and the board's
    self-test imports the image's code."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    with VirtualBoard(flash) as board:  # provisioned before it got its image: the code is on the flash
        first = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
        assert first.rc == 0, first.text
    assert (flash / "firmware" / "app.mpy").exists() and (flash / "lib" / "mindconnect" / "agent.mpy").exists()
    with VirtualBoard(flash, image=_image(tmp_path / "rom", ("lib/", "firmware/"))) as board:
        run = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-restart"))
    assert run.rc == 0, run.text
    assert "the board's firmware image carries firmware (/rom/firmware): the board runs that" in run.text
    assert "the board's firmware image carries mindconnect (/rom/lib/mindconnect)" in run.text
    assert "warning: the image carries" not in run.text
    left = [p for p in snapshot(flash) if p.startswith(("lib/", "firmware/"))]
    assert left == [], left
    assert {"config.json", "secrets.json", "ca.der", "boot.py", "main.py"} <= set(snapshot(flash))
    assert any(line.split()[:2] == ["imports", "PASS"] for line in run.lines), run.text

    with VirtualBoard(tmp_path / "flash2", image=_image(tmp_path / "rom2", ("lib/",))) as board:
        half = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-restart"))
    assert half.rc == 0, half.text
    assert "warning: the image carries mindconnect but not firmware, which is copied from this bundle" in half.text
    assert (tmp_path / "flash2" / "firmware" / "app.mpy").exists()
    assert not (tmp_path / "flash2" / "lib" / "mindconnect").exists()


def test_a_board_unplugged_mid_copy_fails_alone_in_a_fleet(inputs, tmp_path):
    """The USB cable of one board pulled while its files are copied: that board is FAILED in the summary
    with a message, and the fleet run goes on to the next board (it ended in a traceback, with no
    summary and the rest of the fleet not provisioned)."""
    mpyharness.require_micropython()
    with VirtualBoard(tmp_path / "f1") as first, VirtualBoard(tmp_path / "f2") as second:
        (tmp_path / "fleet.csv").write_text("port,name,key\n%s,pulled,\n%s,next,\n" % (first.port, second.port))
        lines = []

        def say(line):
            lines.append(line)
            if line.startswith("  [3/") and not any(ln.startswith("== next") for ln in lines):
                first.stop()  # the cable pulled: the port's other side is gone

        rc = provision.main(["--fleet", str(tmp_path / "fleet.csv"), "--ca", inputs["ca"], "--no-selftest",
                             "--no-restart"], say=say)
    text = "\n".join(lines)
    assert rc == 1, text
    table = lines[lines.index("") + 1:]
    pulled = [r for r in table if r.startswith("pulled")][0].split()
    nxt = [r for r in table if r.startswith("next")][0].split()
    assert pulled[2] == "FAILED" and "USB" in " ".join(pulled), text
    assert nxt[2] == "ok", text


def test_temp_files_left_by_a_pulled_cable_are_removed_at_the_next_run(inputs, tmp_path):
    """A cable pulled while secrets.json (or ca.der, an RSA key) was being written leaves its .tmp, with
    the secrets in it, outside the trees provisioning cleans: the next run removes it."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    with VirtualBoard(flash) as board:
        first = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
        assert first.rc == 0, first.text
        (flash / "secrets.json.tmp").write_bytes((flash / "secrets.json").read_bytes()[:300])
        (flash / "ca.der.tmp").write_bytes(b"\x30\x82")
        (flash / "user.tmp").write_bytes(b"not provisioning's")
        again = Run(*base_args(board.port, inputs, "--key", inputs["key"], "--no-selftest", "--no-restart"))
    assert again.rc == 0, again.text
    assert not (flash / "secrets.json.tmp").exists() and not (flash / "ca.der.tmp").exists()
    assert (flash / "user.tmp").exists()


def test_a_ca_file_that_is_not_a_ca_certificate_is_refused(hub, tmp_path):
    """The gateway's own certificate (what a browser exports by default, here with its key in the same
    PEM), a private key in DER or a cut DER file passed the checks and went to the board as ca.der:
    the node could never verify the gateway, and the self-test says so only if the gateway is reachable
    from where the board is provisioned."""
    from cryptography.hazmat.primitives import serialization
    leaf_pem = hub.ca_pem_path.parent / "server.pem"
    with pytest.raises(pb.ProvisionError, match="not a CA"):
        pb.ca_der(leaf_pem)
    key = serialization.load_pem_private_key((hub.ca_pem_path.parent / "ca-key.pem").read_bytes(), None)
    (tmp_path / "key.der").write_bytes(key.private_bytes(serialization.Encoding.DER,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    (tmp_path / "cut.der").write_bytes(hub.ca_der[:-40])
    for name in ("key.der", "cut.der"):
        with pytest.raises(pb.ProvisionError, match="not a readable X.509 certificate"):
            pb.ca_der(tmp_path / name)
    (tmp_path / "two.der").write_bytes(hub.ca_der * 2)  # DER certificates one after the other still pass
    assert pb.ca_der(tmp_path / "two.der") == hub.ca_der * 2


def test_wifi_password_file_saved_by_windows_tools(tmp_path):
    """A password file written with a UTF-8 byte-order mark (PowerShell 5's Set-Content -Encoding UTF8,
    older Notepad) gave the board a password starting with U+FEFF: it could never join the network. One
    in UTF-16 (PowerShell 5's `echo pw > file`) ended the run in a UnicodeDecodeError traceback."""
    import argparse
    (tmp_path / "bom.txt").write_bytes("\ufeffS3cret-pw\r\n".encode("utf-8"))
    opts = argparse.Namespace(wifi_password_file=str(tmp_path / "bom.txt"))
    assert provision.wifi_password(opts) == "S3cret-pw"
    (tmp_path / "utf16.txt").write_bytes("S3cret-pw\r\n".encode("utf-16"))
    opts = argparse.Namespace(wifi_password_file=str(tmp_path / "utf16.txt"))
    with pytest.raises(pb.ProvisionError, match="UTF-8") as e:
        provision.wifi_password(opts)
    assert "S3cret" not in str(e.value)


def test_inputs_saved_with_a_byte_order_mark_are_read(inputs, tmp_path):
    """Excel's "CSV UTF-8" and Windows editors start a file with a byte-order mark: the fleet CSV was
    refused ("no port": its first column read as "\\ufeffport"), the key and a config template as "not
    valid JSON", whatever the user copied again."""
    bom = "\ufeff".encode()
    (tmp_path / "fleet.csv").write_bytes(bom + b"port,name,key\r\n/dev/ttyUSB0,pump-1,k.json\r\n")
    assert provision.read_fleet(tmp_path / "fleet.csv") == [("/dev/ttyUSB0", "pump-1", str(tmp_path / "k.json"))]
    (tmp_path / "key.json").write_bytes(bom + Path(inputs["key"]).read_bytes())
    assert pb.read_onboarding_key(tmp_path / "key.json") == inputs["key_doc"]["onboarding_key"]
    (tmp_path / "cfg.json").write_bytes(bom + json.dumps(pb.DEFAULT_TEMPLATE).encode())
    assert pb.compose_config(tmp_path / "cfg.json")["sample_s"] == pb.DEFAULT_TEMPLATE["sample_s"]


def test_onboard_without_a_key_is_refused_before_anything_is_written(inputs, tmp_path):
    """--onboard with no key (none given, none waiting in the board's secrets.json) is refused before the
    first write, as every refusal is (it was refused after the whole bundle had been copied)."""
    mpyharness.require_micropython()
    with VirtualBoard(tmp_path / "flash") as board:
        run = Run(*base_args(board.port, inputs, "--onboard", "--no-selftest", "--no-restart"))
    assert run.rc == 1
    assert "--onboard needs an onboarding key" in run.text, run.text
    assert snapshot(tmp_path / "flash") == {}


def test_an_old_clock_lower_bound_on_the_board_is_moved_up(inputs, tmp_path):
    """A board provisioned long ago (or off for months) holds an old /agent/time: after a power cut without
    NTP its clock starts there, before the notBefore of a gateway certificate renewed since, and the
    verified TLS connection that would give it the time fails. Provisioning it again now moves the lower
    bound up to this computer's time (a newer one on the board is kept)."""
    mpyharness.require_micropython()
    flash = tmp_path / "flash"
    (flash / "agent").mkdir(parents=True)
    (flash / "agent" / "time").write_text("1704067200")  # 2024-01-01
    with VirtualBoard(flash) as board:
        run = Run(*base_args(board.port, inputs, "--no-selftest", "--no-restart"))
    assert run.rc == 0, run.text
    assert abs(int((flash / "agent" / "time").read_text()) - time.time()) < 300
