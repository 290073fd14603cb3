# The two commands of the README, for a fresh machine:
#   make demo   run the demo site on http://localhost:8000 (PORT=8011 make demo: another port); its last lines
#               are the URL to open and the credentials (demo / demo-password-123)
#   make test   run the test suite
# Both create .venv (with $(PYTHON)) and install the package and its test tools into it.

PYTHON ?= python3
PORT   ?= 8000
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test docs clean

demo: $(VENV)/.installed
	@$(BIN)/python example/manage.py migrate --noinput --skip-checks -v0
	@$(BIN)/python example/manage.py seed_demo --skip-checks --port $(PORT)
	@$(BIN)/python example/manage.py runserver localhost:$(PORT)

test: $(VENV)/.installed
	bash scripts/ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The documentation (docs/), built from a clean docs/_build; warnings fail it (see docs/conf.py).
docs: $(VENV)/.installed
	$(BIN)/python -c "import sphinx, furo" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[docs]"
	rm -rf docs/_build
	$(BIN)/sphinx-build -W --keep-going -q -d docs/_build/doctrees -b html docs docs/_build/html
	$(BIN)/sphinx-build -W --keep-going -q -d docs/_build/doctrees -b linkcheck docs docs/_build/linkcheck

# Reinstalled whenever the package's metadata changes.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[include,test]"
	touch $@

clean:
	rm -rf $(VENV) .tox build dist *.egg-info example/db.sqlite3
