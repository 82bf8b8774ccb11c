# The README's commands are the contract: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# Heap cap of the MicroPython unix port for the tests (one setting; override: make test MPY_HEAPSIZE=96K)
MPY_HEAPSIZE ?= 64K
export MPY_HEAPSIZE

.PHONY: test lint build demo bench soak clean venv

venv: $(STAMP)

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .

# mpy-cross compile of every device file (lib/, firmware/, boot.py, main.py) into build/mpy
build: $(STAMP)
	$(BIN)/python -m tools.build

test: lint build
	$(BIN)/python -m pytest host_tests

demo: $(STAMP) build
	$(BIN)/python -m tools.demo

bench: $(STAMP) build
	$(BIN)/python -m tools.bench

soak: $(STAMP) build
	$(BIN)/python -m tools.soak

clean:
	rm -rf build .pytest_cache .ruff_cache
