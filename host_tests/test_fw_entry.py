"""boot.py and main.py as the unix port runs them (compiled .mpy, sim board, a folder as flash)."""

import json


def run_boot_and_main(mpy, tmp_path, flash_files):
    flash = tmp_path / "flash"
    flash.mkdir()
    for name, text in flash_files.items():
        (flash / name).write_text(text)
    env = {"MC_FLASH_DIR": str(flash), "MC_BOARD": "sim"}
    # cwd is the temp folder, so the repo's sources are not on the path: boot.mpy and main.mpy run
    proc = mpy.run(["-c", "import boot\nimport main\nprint('REPL')"], env=env, cwd=str(tmp_path), timeout=60)
    return proc, flash


def test_three_failed_boots_give_safe_mode_and_the_repl(mpy, tmp_path):
    proc, flash = run_boot_and_main(mpy, tmp_path, {"crash_count": "3\nValueError: boom\n"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "SAFE MODE: the app failed 3 boots in a row (last: ValueError: boom).",
        "The app is not started and the REPL is yours. Fix the cause, then reset to try the app again.",
        "Unattended, the board resets in 60 min to try the app again; to stay in safe mode, run:",
        "    from firmware import power; power.stay()",
        "REPL",
    ]
    assert not (flash / "crash_count").exists()


def test_bad_config_is_printed_and_the_repl_stays(mpy, tmp_path):
    cfg = {"sensors": [{"type": "dht22", "pin": 35, "points": [{"id": "t1"}]}]}
    proc, flash = run_boot_and_main(mpy, tmp_path, {"config.json": json.dumps(cfg), "ca.der": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "config error: sensors[0].pin: 35 is input-only on ESP32 and this sensor must drive its line; use one of "
        "4, 13, 14, 16-19, 21-23, 25-27, 32, 33",
        "The app is not started; fix the file on the flash, then reset.",
        "REPL",
    ]
    assert not (flash / "crash_count").exists()


def test_boot_leaves_the_heap_to_main(mpy, tmp_path):
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "config.json").write_text(json.dumps({"safe_pin": None, "sensors": []}))
    code = ("import gc, sys\ngc.collect()\nbefore = gc.mem_alloc()\nimport boot\ngc.collect()\n"
            "print(sorted(sys.modules), gc.mem_alloc() - before)")
    proc = mpy.run(["-c", code], env={"MC_FLASH_DIR": str(flash), "MC_BOARD": "sim"}, cwd=str(tmp_path))
    mods, kept = proc.stdout.rsplit(" ", 1)
    assert mods == "['boot', 'firmware', 'firmware.power']", proc.stdout + proc.stderr
    assert int(kept) < 16 * 1024  # power.mpy and its decision; the board and library modules are gone
