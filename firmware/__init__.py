"""The sensor-node application built on lib/mindconnect: config, boards, sensors, network, power."""


def _once(name, fn, *args):
    """firmware.<name>.<fn>(*args), the module imported for the call and unloaded after it: code needed
    once a boot (reading and checking the config, describing the data model) leaves the heap again."""
    import gc
    import sys
    gc.collect()  # the module's code is loaded in one go: give it an unfragmented heap
    mod = __import__("firmware." + name, None, None, (fn,))
    try:
        return getattr(mod, fn)(*args)
    finally:
        mod = None
        sys.modules.pop("firmware." + name, None)
        globals().pop(name, None)
        gc.collect()
