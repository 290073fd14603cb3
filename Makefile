# The two commands of the README, for a fresh machine:
#   make demo   run the demo site on http://localhost:8000 (demo / demo-password-123)
#   make test   run the test suite
# Both create .venv (with $(PYTHON)) and install the package and its test tools into it.

PYTHON ?= python3
PORT   ?= 8000
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test clean

demo: $(VENV)/.installed
	$(BIN)/python example/manage.py migrate --noinput
	$(BIN)/python example/manage.py seed_demo
	$(BIN)/python example/manage.py runserver localhost:$(PORT)

test: $(VENV)/.installed
	bash scripts/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Reinstalled whenever the package's metadata changes.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[include,test]"
	touch $@

clean:
	rm -rf $(VENV) .tox build dist *.egg-info example/db.sqlite3
