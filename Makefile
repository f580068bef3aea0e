# Fresh-machine entry points. `make test` creates .venv, installs everything and runs
# lint, the fast tier and the slow tier. `make quickstart` runs the main job on the
# embedded default (synthetic body model and data, tiny preset) and writes runs/quickstart/.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, on its own, so the package's `torch>=2.4` is already satisfied:
# torch==2.13.0 is the CPU build on the project's machines; TORCH_SPEC (pip arguments) lets a
# GPU user pick another build.
TORCH_SPEC ?= torch==2.13.0
PYOPENGL := PyOpenGL==3.1.10

# Debian packages some tests and commands need: OSMesa for headless rendering (data synth),
# SLURM and munge for the tests that run real controllers and nodes on this machine, iproute2
# for the two-node cluster's network namespaces (util-linux's unshare and nsenter are always
# there), PostgreSQL for the sweep agents' shared study, Chromium for the dashboard's test.
# Installed when this runs as root with apt-get (CI, containers); elsewhere install them
# yourself: the tests that need them skip with the reason (and fail instead when CI is set).
# The quickstart needs OSMesa alone (RUN_PACKAGES); the tests need them all.
RUN_PACKAGES ?= libosmesa6
SYSTEM_PACKAGES ?= $(RUN_PACKAGES) slurm-wlm munge iproute2 postgresql chromium

.PHONY: env run-env system-deps run-system-deps lint test test-fast test-slow quickstart bench clean

# $(call apt,PACKAGES): install the missing ones as root with apt-get, else say what to install
apt = @if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "installing $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else \
		echo "note: not root or no apt-get; install $(1) yourself (rendering and SLURM tests)"; \
	fi

system-deps:
	$(call apt,$(SYSTEM_PACKAGES))

run-system-deps:
	$(call apt,$(RUN_PACKAGES))

# The package and what it runs with (the quickstart's install).
$(BIN)/.installed-run: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e .
	# pyrender pins PyOpenGL 3.1.0, whose OSMesa binding lacks OSMesaCreateContextAttribs;
	# 3.1.10 renders headless (pip then warns about the pin: expected).
	$(BIN)/pip install --quiet "$(PYOPENGL)"
	touch $@

# ... and the tools the tests use.
$(BIN)/.installed: $(BIN)/.installed-run
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet "$(PYOPENGL)"  # the extras' resolve reinstates pyrender's pin
	touch $@

run-env: $(BIN)/.installed-run run-system-deps

env: $(BIN)/.installed system-deps

# TensorFlow, only for the import-tf tests (reading the released checkpoints): kept out of
# `env` so that the quickstart does not install it.
$(BIN)/.installed-tf: $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[tf]"
	$(BIN)/pip install --quiet "$(PYOPENGL)"  # the extra's resolve reinstates pyrender's pin
	touch $@

lint: env
	$(BIN)/ruff check lightning_hmd tests data_prep benchmarks
	$(BIN)/ruff format --check lightning_hmd tests data_prep benchmarks

test-fast: env
	WANDB_MODE=disabled $(BIN)/pytest -q

test-slow: env $(BIN)/.installed-tf
	WANDB_MODE=disabled $(BIN)/pytest -q -m slow

test: lint test-fast test-slow

# The main job on the embedded default: synthetic body model and rendered data, the temporal
# model and the single-frame ablation trained and evaluated, a report in runs/quickstart/.
quickstart: run-env
	WANDB_MODE=offline $(BIN)/lightning-hmd quickstart --out runs/quickstart

# Timing scripts (not tests); results are recorded in benchmarks/results/.
bench: env
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV)
