"""MindConnect agent library for MicroPython and CPython. Import the submodules you need."""

VERSION = "0.1.0"
