# Device form for a MicroPython unix-port process: mount the ROMFS image of lib/ and firmware/ at /rom,
# then run a module as if it were started with -m. Host tooling (started by tools/romform.py), never
# shipped to a board. Usage:
#   MPY_ROM_IMAGE=build/mpy.romfs MPY_ROM_HEAP=<usable bytes of the cap> MPY_ROM_PATH=/rom/lib:/rom \
#       micropython -X heapsize=<cap + image> -m romboot <module> [args...]
#
# Heap accounting. On a board the image is a flash partition (or the code is frozen into the firmware)
# and costs no heap. Here it has to live somewhere the VfsRom can read it in place, and the only memory
# this interpreter offers is its GC heap. So the process is started with a heap larger than the cap by
# about the image's size, and the image buffer is allocated here, before the program runs, as one
# bytearray whose size is chosen so that what it takes out of the heap (its 32-byte object block plus
# its data blocks; GC blocks are 32 bytes on the 64-bit port) leaves exactly MPY_ROM_HEAP bytes: the
# usable GC heap of a plain `-X heapsize=<cap>` process. The program never sees more than the cap.
# The image bytes beyond the file are zero padding, also "flash". What stays in the heap are the objects
# a board also makes in RAM: the VfsRom and mount entry, module dicts, function and class objects, qstrs.
import gc
import os
import sys

import vfs


def _mount():
    path = os.getenv("MPY_ROM_IMAGE")
    usable = int(os.getenv("MPY_ROM_HEAP"))
    size = os.stat(path)[6]
    gc.collect()
    total = gc.mem_free() + gc.mem_alloc()
    take = total - usable  # what the image must take out of the heap
    if take < 64 + size:
        raise RuntimeError("romboot: -X heapsize too small for the cap and a %d-byte image (%d to spare)"
                         % (size, take))
    before = gc.mem_alloc()
    image = bytearray(take - 32)  # one 32-byte object block + data blocks == take (a multiple of 32)
    f = open(path, "rb")
    got = f.readinto(image)  # the file, then zeros: padding is flash too
    f.close()
    f = None  # nothing but the image may stay allocated
    if got != size:
        raise RuntimeError("romboot: short read of " + path)
    gc.collect()
    taken = gc.mem_alloc() - before
    if taken != take or gc.mem_free() + gc.mem_alloc() - taken != usable:
        raise RuntimeError("romboot: the image took %d bytes of heap, %d expected: accounting is off" % (taken, take))
    vfs.mount(vfs.VfsRom(image), "/rom")
    first = os.getenv("MPY_ROM_PATH").split(":")
    for p in [""] + first:  # '' is the working folder: never import device code from it
        while p in sys.path:
            sys.path.remove(p)
    sys.path[:0] = first


_mount()
sys.argv.pop(0)
__import__(sys.argv[0])
