# salesperf: the two commands are `make run` and `make test` (see README.md).
# Only Python 3.11 and git are needed: everything else is installed here.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# PORT from the environment, else from .env, else 8000.
PORT ?= $(or $(shell sed -n 's/^PORT=\([0-9]*\).*/\1/p' .env 2>/dev/null),8000)

.PHONY: run test fault-test lint format install migrate seed services-stop clean help

help:
	@echo "make run    install, migrate, load the demo data, start web + worker + scheduler"
	@echo "make test   lint and run the whole test suite"
	@echo "make fault-test  reminder emails exactly once while workers, Redis and PostgreSQL die (5 min)"

# The virtualenv is rebuilt when a requirements file changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

.env:
	cp .env.example .env

install: $(BIN)/.installed .env

migrate: install
	$(BIN)/python manage.py ensure_database
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo --if-empty

run: seed
	$(BIN)/python manage.py compile_translations
	@echo ""
	@echo "  salesperf is starting on http://127.0.0.1:$(PORT)/"
	@echo "  Demo logins (password: salesperf-demo):"
	@echo "    admin@example.com          administrator"
	@echo "    manager@example.com        manager of team North"
	@echo "    rep@example.com            rep in North (also rep2@example.com)"
	@echo "    manager.south@example.com  manager of team South (rep: rep.south@example.com)"
	@echo "    marketing@example.com      marketing"
	@echo "  Ctrl-C stops the web server, the worker and the scheduler."
	@echo ""
	SALESPERF_WEB_PORT=$(PORT) $(BIN)/honcho start --env /dev/null -f Procfile.dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	$(BIN)/pytest

# Reminder emails exactly once while workers, Redis and PostgreSQL are killed
# (bench/fault_reminders.py): the normal run, then the early-ack control.
fault-test: install
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python bench/fault_reminders.py --early-ack

# Stops the embedded PostgreSQL and Redis (if this project started them).
services-stop: install
	$(BIN)/python -c "from salesperf import embedded; print('stopped:', embedded.stop())"

clean:
	rm -rf $(VENV) staticfiles
