# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,plot]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m framework.demo $(ARGS)

# pytest exits 5 when it collects no tests: say so; make turns any failure into exit 2.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n 2 $(ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$status

test-all: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check framework compiler triton_kernels tests

bench: $(STAMP)
	$(PY) -m framework.bench ops

clean:
	rm -rf $(VENV) build *.egg-info
