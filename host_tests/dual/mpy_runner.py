# Runs one dual-runtime test function under MicroPython and prints @@PASS, @@FAIL or @@SKIP.
# Usage: micropython -X heapsize=64K -m mpy_runner <module> <test function>
import gc
import sys

import dualtest

# The unix port puts the working directory (the repo root) first on sys.path, where firmware/ exists as
# source: drop it, so tests import the .mpy files compiled as for the device, as lib/ already is.
if "" in sys.path:
    sys.path.remove("")


def main():
    mod_name, test_name = sys.argv[1], sys.argv[2]
    try:
        mod = __import__(mod_name)
        fn = getattr(mod, test_name)
        gc.collect()
        fn()
    except dualtest.Skip as e:
        print("@@SKIP", e.args[0] if e.args else "")
        return
    except BaseException as e:  # noqa: B036 - report every failure, MemoryError included
        sys.print_exception(e)
        print("@@FAIL", type(e).__name__)
        return
    print("@@PASS")


main()
