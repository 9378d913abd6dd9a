# One entry point for people and CI. `make install` is idempotent: it reinstalls
# only when pyproject.toml changes.
VENV ?= .venv
PY := $(VENV)/bin/python
NST := $(VENV)/bin/nst
SHARED_IMAGES ?= ../shared/images

.PHONY: install test test-fast lint bench demo up clean

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

test-fast: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/run.py --out bench/out

clean:
	rm -rf $(VENV) data bench/out .pytest_cache
