# daxsim: two commands do everything (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Host programs of the real-kernel guest (sim/kernel): QEMU, the guest's tools, the agent's gcc.
KSTAMP := $(VENV)/.kernel-tools
KPKGS  := qemu-system-x86 busybox-static xfsprogs ndctl cpio zstd gcc libc6-dev
KTOOLS := qemu-system-x86_64 mkfs.xfs xfs_io ndctl cpio zstd gcc

.PHONY: run test bench lint clean setup-kernel kernel-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# As root on Debian, apt installs what is missing; elsewhere this says what is missing (the
# real-kernel tests need it) and goes on.
$(KSTAMP): | $(STAMP)
	@check() { missing=""; for t in $(KTOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	  file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || missing="$$missing busybox-static"; }; \
	check; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then \
	  echo "installing the real-kernel guest's tools:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(KPKGS) >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(KPKGS) >/dev/null; }; \
	  check; \
	fi; \
	if [ -n "$$missing" ]; then \
	  echo "warning: the real-kernel tests need:$$missing (Debian: apt-get install --no-install-recommends $(KPKGS))"; \
	else touch $@; fi

setup-kernel: $(KSTAMP)

run: $(STAMP)
	$(BIN)/daxsim run
	$(BIN)/daxsim compare

test: $(STAMP) $(KSTAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --nbmake tests notebooks

bench: $(STAMP)
	$(BIN)/python -m pytest benchmarks -q --benchmark-only

# Every conformance case, README reproducer and kernel script on 6.1, 6.12, 6.18 and 7.3 and in
# daxsim: results/kernel-check/compare.parquet and agreement.md (the README's table); then the
# README's hunt with every finding confirmed on its kernel (results/kernel-check-hunt).
kernel-check: $(STAMP) $(KSTAMP)
	$(BIN)/python -m sim kernel fetch --all
	$(BIN)/python benchmarks/kernel_check.py

lint: $(STAMP)
	$(BIN)/ruff format --check sim workloads tests benchmarks
	$(BIN)/ruff check sim workloads tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
