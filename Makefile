# Two commands on a fresh machine: `make demo` and `make test`. Each sets up what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
DEMO_DIR ?= demo_output

.PHONY: setup demo test test-fast bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; command -v ffmpeg >/dev/null || missing=" ffmpeg"; \
	  command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing="$$missing chromium chromium-driver"; \
	  if [ -n "$$missing" ]; then echo "installing$$missing (the Space's browser test drives chromium)"; \
	    (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null) || \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null); fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,space]'
	@touch $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(PY) -m generation.mini --output_dir $(DEMO_DIR)/mini --size default --seed 0
	$(OFFLINE) $(PY) -m dataset_script.build $(DEMO_DIR)/mini --output_dir $(DEMO_DIR)/deepfake_mnist_plus
	cd $(DEMO_DIR) && $(OFFLINE) $(abspath $(PY)) -m dataset_script.inspect_repo deepfake_mnist_plus --configs raw,c23,c40
	$(OFFLINE) $(PY) training/train.py --preset demo --dataset_name $(DEMO_DIR)/deepfake_mnist_plus \
	  --test_config_names raw,c23,c40 --output_dir $(DEMO_DIR)/detector --resume true \
	  --frame_cache_dir $(DEMO_DIR)/frame_cache
	@echo "serving the Space with $(DEMO_DIR)/detector at http://127.0.0.1:$${GRADIO_SERVER_PORT:-7860}/ (Ctrl-C stops it)"
	$(OFFLINE) $(PY) spaces/detector/app.py --model $(DEMO_DIR)/detector --examples $(DEMO_DIR)/deepfake_mnist_plus

test: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q

# The inner loop: what a developer runs after each change (docs/testing.md says what each tier covers).
test-fast: $(STAMP)
	$(OFFLINE) $(PY) -m pytest -q -m "not slow and not browser and not gpu"

bench: $(STAMP)
	$(OFFLINE) $(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
