# kto: two commands do all set-up on a fresh Debian 12 machine.
#   make run    install system packages + Python deps, then run the "default" run
#   make test   same set-up, then the test suite (real kernel builds and boots)
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-arches test-bisect test-full test-vmemmap test-ci test-race setup system bench clean

run: setup
	$(VENV)/bin/kto run default

test: setup
	$(VENV)/bin/python -m pytest -ra -m "not arches and not bisect and not full and not vmemmap and not ci and not race"

# arm64 + riscv64: two more cold cross builds (~10-15 min each) on a fresh machine.
test-arches: setup
	$(VENV)/bin/python -m pytest -ra -m arches

# The full hugetlb + userfaultfd suites on x86_64: ~15 min idle, 45 min or more busy (TCG + KASAN).
test-full: setup
	$(VENV)/bin/python -m pytest -ra -m full

# Real check-series and bisects of the example series (x86_64, incremental builds).
test-bisect: setup
	$(VENV)/bin/python -m pytest -ra -m bisect

# The stock-kernel known issue (known-issues.yaml) reproduced on the x86_64 debug-VM kernel
# booted with hugetlb_free_vmemmap=on (the kernel test-race uses: a cold build of ~10 min on
# a fresh machine unless .ci/run's build lane or test-race built it first).
test-vmemmap: setup
	$(VENV)/bin/python -m pytest -ra -m vmemmap

# The generated GitLab pipeline run for real by gitlab-ci-local (npm, installed into
# .ci-tools/ by scripts/setup-ci-local.sh) with its shell executor: three nights of a small
# x86_64 run (red, still, fixed). The jobs use the caller's KTO_CACHE, like a runner's
# persistent cache: a few minutes when its kernels are in the build store.
test-ci: setup
	@scripts/setup-ci-local.sh
	$(VENV)/bin/python -m pytest -ra -m ci

# Race detection (README "Detection"): the x86_64 debug-VM kernel (one more cold build on a
# fresh machine) with every workload, and the two example race series caught by
# check-series and bisected (~23 min warm, incremental builds of the series' steps).
test-race: setup
	$(VENV)/bin/python -m pytest -ra -m race

# Unit tests only: no kernel build, no QEMU (seconds).
test-fast: setup
	$(VENV)/bin/python -m pytest -ra -m "not slow and not arches and not bisect and not full and not vmemmap and not ci and not race"

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# Benchmarks against the tools users would pick instead (docs/benchmarks.md); needs the
# default kernel (built by the first kto run if missing). ~15 min on 2 cores.
bench: setup $(VENV)/.bench-installed
	$(VENV)/bin/python bench/run_all.py

$(VENV)/.bench-installed: pyproject.toml $(STAMP)
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

clean:
	rm -rf $(VENV) results
