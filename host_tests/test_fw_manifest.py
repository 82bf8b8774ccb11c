"""firmware/manifest.py names folders that exist and freezes both packages (run with stub manifest functions)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_packages_exist():
    calls = []
    here = ROOT / "firmware"
    env = {"include": lambda p, **kw: calls.append(("include", p)),
           "package": lambda name, base_path=".", **kw: calls.append(("package", name, (here / base_path).resolve()))}
    exec(compile((here / "manifest.py").read_text(), "manifest.py", "exec"), env)
    assert ("include", "$(PORT_DIR)/boards/manifest.py") in calls
    pkgs = {c[1]: c[2] for c in calls if c[0] == "package"}
    assert set(pkgs) == {"mindconnect", "firmware"}
    for name, base in pkgs.items():
        assert (base / name / "__init__.py").is_file(), name
