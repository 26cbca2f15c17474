# Set-up, main job and tests.  `make run` and `make test` each do the whole set-up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_DATA := /usr/share/datasets/fashion-mnist
FASHION_MNIST_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz

.PHONY: install data browser run test test-extended test-guide docs docs-serve docs-test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[torch,keras,docs,dev]"
	touch $(STAMP)

# Debian's package where apt and root are available; otherwise Keras downloads it on first use.
# Then Keras's cache ($KERAS_HOME, default ~/.keras, + datasets/fashion-mnist) gets a copy of each
# local file it lacks: keras.datasets and the notebooks read it there, so they work offline too.
data:
	@if [ -n "$$FASHION_MNIST_DIR" ] || [ -f $(DEBIAN_DATA)/t10k-labels-idx1-ubyte.gz ]; then \
		echo "Fashion-MNIST: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
		echo "Fashion-MNIST: installed Debian's dataset-fashion-mnist"; \
	else \
		echo "Fashion-MNIST: no local copy; it will be downloaded through keras.datasets on first use"; \
	fi
	@source="$${FASHION_MNIST_DIR:-$(DEBIAN_DATA)}"; cache="$${KERAS_HOME:-$$HOME/.keras}/datasets/fashion-mnist"; \
	copied=0; \
	for name in $(FASHION_MNIST_FILES); do \
		if [ -f "$$source/$$name" ] && [ ! -f "$$cache/$$name" ]; then \
			mkdir -p "$$cache" && cp "$$source/$$name" "$$cache/$$name.part$$$$" \
				&& mv "$$cache/$$name.part$$$$" "$$cache/$$name" && copied=$$((copied + 1)); \
		fi; \
	done; \
	if [ $$copied -gt 0 ]; then echo "Fashion-MNIST: copied $$copied file(s) into Keras's cache $$cache"; fi

# The main job: the notebook's recipe in PyTorch and in Keras on the torch and JAX backends.
run: install data
	$(PY) -m parity compare --backends torch,jax --out runs/compare

# The whole suite under the torch backend, then the backend-dependent tests under jax and tensorflow:
# Keras reads KERAS_BACKEND once per process.  pytest-xdist spreads each run over TEST_JOBS worker
# processes (each takes the next test when it is free); TEST_JOBS=0 runs everything in one process.
# Kept out of make test to hold it under 15 minutes on 2 cores, and run by test-extended (CI runs
# both targets): every page of the guide, both languages, under jax and tensorflow (make test: torch), and, under
# all three backends, the Keras notebooks in an empty folder and a killed-and-resumed Keras run.
TEST_JOBS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_JOBS) --dist worksteal
test: install data
	KERAS_BACKEND=torch $(PYTEST) -m "not extended_only and not site"
	KERAS_BACKEND=jax $(PYTEST) -m "backend and not extended and not extended_only"
	KERAS_BACKEND=tensorflow $(PYTEST) -m "backend and not extended and not extended_only"

test-extended: install data
	KERAS_BACKEND=torch $(PYTEST) -m "extended_only"
	KERAS_BACKEND=jax $(PYTEST) -m "backend and (extended or extended_only)"
	KERAS_BACKEND=tensorflow $(PYTEST) -m "backend and (extended or extended_only)"

test-guide: install data
	KERAS_BACKEND=torch $(PY) -m pytest -m guide

# The guide as a website (mkdocs.yml): the notebooks run in quick mode into the docs tree (skipped
# when unchanged), then a strict build into site/: a broken link or anchor fails it.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs
docs: install data
	$(PY) -m guide.site prepare
	$(MKDOCS) build --strict

docs-serve: docs
	$(MKDOCS) serve --dev-addr 127.0.0.1:8000

# Debian's chromium and its driver, for make docs-test; guarded as the data target is.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver) >/dev/null; \
		echo "chromium and chromedriver: installed Debian's chromium and chromium-driver"; \
	else \
		echo "chromium and chromedriver: missing; install Debian's chromium and chromium-driver (as root)" >&2; exit 2; \
	fi

# The site in a headless chromium (tests/test_site.py): every page of both languages, the tabs,
# the language menu, search, the phone layout; it rewrites the screenshots in docs/screenshots/.
docs-test: docs browser
	$(PY) -m pytest -m site -n 0 -p no:cacheprovider tests/test_site.py

bench: install data
	$(PY) -m benchmarks.epoch_time

clean:
	rm -rf $(VENV) runs .pytest_cache site .cache/site
