# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the pinned dependencies into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The bundled 8x8 digits, 2 latent dimensions so that the manifold picture is the model itself.
demo: install
	$(PY) -m aevb train --data digits --latent-dim 2 --hidden 256 256 --activation relu \
	  --init default --optimizer adam --lr 1e-3 --epochs 500 --out runs/demo --overwrite

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf runs .pytest_cache
