# One entry point for people and CI. `make install` is idempotent: it reinstalls
# only when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
NST := $(VENV)/bin/nst
SHARED_IMAGES ?= ../shared/images

.PHONY: install test test-fast lint bench sheet demo up clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.14.1 and torchvision==0.29.1 come from this machine's wheel cache via pip.
	$(PY) -m pip install -q -e '.[worker,dev]'
	touch $@

# pytest exits 5 when it collects nothing: with a suite in place that means collection broke.
test: install
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests" >&2; exit $$rc; }

# Every test that starts no process (in-process API/worker/service tests and the engine's unit
# tests), then coverage of the service code. Process-starting suites are marked `processes`.
test-fast: install
	$(PY) -m coverage run --source=api,worker,service -m pytest -q -m "not processes" -p no:cacheprovider
	$(PY) -m coverage report --skip-empty

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/run.py --out bench/out

# Every shared content x style, one column per preset, pastiche beside the figure styles
# (cells cached in bench/out/sheet/cells; pastiche takes minutes per image the first time).
sheet: install
	$(PY) bench/sheet.py --out bench/out/sheet

DEMO_SIZE ?= 256
SKIMAGE_DATA = $$($(PY) -c 'import os, skimage; print(os.path.dirname(skimage.__file__))')/data

# `nst up` in the background (own data dir, free port), one job over HTTP with a progress bar,
# the result in out/demo.png, then the stack is stopped (also on failure or Ctrl-C).
demo: install
	@mkdir -p out
	@content=$(SHARED_IMAGES)/tubingen.jpg; [ -f $$content ] || content=$(SKIMAGE_DATA)/chelsea.png; \
	style=$(SHARED_IMAGES)/starry_night.jpg; [ -f $$style ] || style=$(SKIMAGE_DATA)/astronaut.png; \
	port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	NST_DATA_DIR=data/demo $(NST) up --port $$port > out/demo-stack.log 2>&1 & up=$$!; \
	trap 'kill -TERM $$up 2>/dev/null; wait $$up' EXIT INT TERM; \
	until grep -q "nst is up" out/demo-stack.log; do \
	  kill -0 $$up 2>/dev/null || { tail -20 out/demo-stack.log; exit 1; }; sleep 0.5; done; \
	echo "stack up on port $$port (web page: http://127.0.0.1:$$port/); submitting $$content x $$style"; \
	$(NST) submit $$content $$style --server http://127.0.0.1:$$port \
	  --size $(DEMO_SIZE) --preset fast --wait -o out/demo.png

up: install
	$(NST) up

clean:
	rm -rf $(VENV) data bench/out .pytest_cache
