# One place for every developer and CI command. `make test` on a fresh Debian 12
# machine (as root) installs everything it needs, then runs the tests.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CACHE  ?= $(HOME)/.cache/ghubai-tray
LLAMA_CPP_VERSION := 0.3.36
OLLAMA_VERSION := 0.17.4
MINIAUDIO_VERSION := 1.71
OLLAMA_BIN := $(CACHE)/ollama-v$(OLLAMA_VERSION)/ollama
JAEGER_VERSION := 1.75.0
JAEGER_BIN := $(CACHE)/jaeger-v$(JAEGER_VERSION)/jaeger

# Debian packages the test suite and later milestones need: a real X display and
# tray host (Xvfb, trayer, xdotool, x11-utils, imagemagick), a D-Bus session with
# a Secret Service (dbus, dbus-x11, gnome-keyring) and a notification daemon
# (dunst), PyGObject's build dependencies and typelibs for the tray menu, NSIS
# for the Windows installer, cmake for building llama.cpp, python3-venv (a bare
# Debian python3 cannot make the .venv without it), minisign (release signatures) and
# shellcheck (actionlint checks the workflows' scripts with it).
APT_PACKAGES := xvfb trayer xdotool x11-utils imagemagick dbus dbus-x11 gnome-keyring \
	dunst libgirepository1.0-dev libcairo2-dev pkg-config gir1.2-gtk-3.0 \
	gir1.2-ayatanaappindicator3-0.1 nsis cmake build-essential desktop-file-utils \
	nlohmann-json3-dev libstb-dev python3-venv python3-tk openbox wmctrl minisign shellcheck

# What running the app needs, and no more (make run): Python's venv and Tk (the Settings
# window), and PyGObject's build dependencies and typelibs for the tray menu.
RUN_APT_PACKAGES := python3-venv python3-tk libgirepository1.0-dev libcairo2-dev pkg-config \
	gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1

# Install the Debian packages of $(1) that are missing (as root), or say which to install.
define apt_install
missing=$$(for p in $(1); do \
	dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
done); \
if [ -z "$$missing" ]; then echo "Debian packages: all present"; \
elif [ "$$(id -u)" = 0 ]; then \
	echo "Installing Debian packages:" $$missing; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
else \
	echo "NOTE: not root, so these Debian packages were not installed:" $$missing; \
	echo "      run: sudo apt-get install" $$missing; \
fi
endef

# Real screenshots for the README: the desktop tests take them under Xvfb.
screenshots: setup
	GHUBAI_ARTIFACTS=$(CURDIR)/artifacts $(BIN)/pytest -q tests/desktop/test_tray_desktop.py tests/desktop/test_settings_window.py
	mkdir -p docs/screenshots && cp artifacts/*.png docs/screenshots/
	$(BIN)/python docs/icon_states.py

.PHONY: llama-server-deps release-check release-notes release-sums release-dry-run release-key workflows-lint go-deps ollama-deps jaeger-deps bench-ollama bench-servers bench-ledger bench-fleet bench-hostile soak fuzz bench bundle deb tarball dist dist-check windows-deps test-windows dist-windows dist-windows-check dist-windows-update-check bench-windows docker docker-deps docker-check screenshots help setup system-deps run-system-deps python-deps node-deps run test check lint typecheck unit demo clean

help:
	@echo "make run     start GhubAi Tray (the tray icon)"
	@echo "make test    install everything needed, then run the test suite"
	@echo "make check   ruff + mypy --strict + the test suite"
	@echo "make lint typecheck unit   the fast loop: no builds, seconds"
	@echo "make dist    build the Linux bundle, the .deb and the tarball"
	@echo "make test-windows    the tests on Windows CPython under Wine"
	@echo "make dist-windows    the Windows bundle and its setup.exe (under Wine)"
	@echo "make demo    the hub, the Ollama stand-in and the tray, with a request every 5 s"

setup: system-deps python-deps node-deps go-deps ollama-deps llama-server-deps jaeger-deps

system-deps:
	@$(call apt_install,$(APT_PACKAGES))
	@command -v node >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq nodejs npm >/dev/null; \
		else echo "NOTE: node is missing; the conformance tests will be skipped"; fi; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel

# The llama.cpp build takes ~3 minutes on 2 cores, so its wheel is cached outside
# the checkout. GGML_NATIVE=OFF keeps the cached wheel runnable on any x86-64 CPU.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,menu]'
	@mkdir -p $(CACHE)/wheels
	@if ! ls $(CACHE)/wheels/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) (about 3 minutes, cached afterwards)"; \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip wheel -q --no-deps -w $(CACHE)/wheels \
			llama-cpp-python==$(LLAMA_CPP_VERSION); \
	fi
	$(BIN)/pip install -q "$$(ls $(CACHE)/wheels/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl | head -1)[server]"
	@touch $@

python-deps: $(VENV)/.installed

# llama.cpp's own llama-server for the model-server tests (tests/testbed/llama_cpp_server.py),
# built once from the llama.cpp source in the llama-cpp-python sdist, into the cache: no
# web UI (fetched from a host unreachable here), no curl, portable CPU code, static
# libraries so the one file runs alone. About 10 minutes on 2 cores.
LLAMA_SERVER := $(CACHE)/llama-server-$(LLAMA_CPP_VERSION)/llama-server
llama-server-deps: $(LLAMA_SERVER)
$(LLAMA_SERVER): | $(BIN)/python
	@echo "Building llama.cpp's llama-server from llama-cpp-python $(LLAMA_CPP_VERSION)'s sdist (about 10 minutes, cached afterwards)"
	@tmp=$$(mktemp -d) && \
	$(BIN)/pip download -q --no-deps --no-binary :all: -d $$tmp llama-cpp-python==$(LLAMA_CPP_VERSION) && \
	tar -C $$tmp -xzf $$tmp/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz && \
	cmake -S $$tmp/llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp -B $$tmp/build \
		-DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
		-DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null && \
	cmake --build $$tmp/build --target llama-server -j2 >/dev/null && \
	mkdir -p $(dir $(LLAMA_SERVER)) && cp $$tmp/build/bin/llama-server $(LLAMA_SERVER).tmp && \
	mv $(LLAMA_SERVER).tmp $(LLAMA_SERVER) && rm -rf $$tmp

tests/conformance/node_modules/.installed: tests/conformance/package-lock.json
	@if command -v npm >/dev/null; then \
		cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	fi

node-deps: tests/conformance/node_modules/.installed

# Ollama's own request types, compiled into a small decoder the body tests ask (cached
# outside the checkout by the hash of its sources; about a minute the first time).
# Without Go, Debian's golang-go is installed; it fetches the Go release that the Ollama
# module asks for from the Go module proxy by itself (GOTOOLCHAIN=auto).
go-deps: python-deps
	@if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ] && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's golang-go"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null; \
	fi
	@if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then \
		GOTOOLCHAIN=auto GHUBAI_CACHE=$(CACHE) $(BIN)/python -m tests.testbed.godecode >/dev/null; \
		test -x $(ACTIONLINT) || PATH="$$PATH:/usr/local/go/bin" GOTOOLCHAIN=auto \
			GOBIN=$(dir $(ACTIONLINT)) go install \
			github.com/rhysd/actionlint/cmd/actionlint@v$(ACTIONLINT_VERSION); \
	else echo "NOTE: Go is missing; the tests that decode bodies as Ollama does will be skipped"; fi

# The real Ollama for the real-Ollama tests, CPU only, built once from its Go module (about
# 9 minutes on 2 cores) into the cache. Go module zips leave out Ollama's vendor/ folder, so
# the C++ headers it needs come from Debian (nlohmann-json3-dev, libstb-dev; system-deps)
# and from PyPI's miniaudio sdist (one header).
ollama-deps: $(OLLAMA_BIN)

$(OLLAMA_BIN): | go-deps python-deps
	@if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then \
		echo "Building Ollama $(OLLAMA_VERSION) from its Go module (about 9 minutes, cached afterwards)"; \
		inc=$(CACHE)/ollama-include; tmp=$$(mktemp -d); \
		mkdir -p $$inc/miniaudio && \
		$(BIN)/pip download -q --no-deps --no-binary :all: -d $$tmp miniaudio==$(MINIAUDIO_VERSION) && \
		tar -xzf $$tmp/miniaudio-$(MINIAUDIO_VERSION).tar.gz -C $$tmp && \
		cp $$tmp/miniaudio-$(MINIAUDIO_VERSION)/miniaudio/miniaudio.h $$inc/miniaudio/ && \
		PATH=$$PATH:/usr/local/go/bin GOTOOLCHAIN=auto CGO_CPPFLAGS="-I$$inc" \
			GOBIN=$(dir $(OLLAMA_BIN)) go install github.com/ollama/ollama@v$(OLLAMA_VERSION); \
		status=$$?; rm -rf $$tmp; exit $$status; \
	else echo "NOTE: Go is missing; the real-Ollama tests will be skipped"; fi

# The real Jaeger v2 for the telemetry test that reads traces back, built once from its Go
# module into the cache (a module of our own in the cache holds it as a tool, as Jaeger's
# docs say to install it; its go.sum pins every dependency after the first build).
jaeger-deps: $(JAEGER_BIN)

$(JAEGER_BIN): | go-deps
	@if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then \
		echo "Building Jaeger $(JAEGER_VERSION) from its Go module (a few minutes, cached afterwards)"; \
		mod=$(CACHE)/jaeger-module; mkdir -p $$mod && cd $$mod && \
		export PATH=$$PATH:/usr/local/go/bin GOTOOLCHAIN=auto GOFLAGS=-mod=mod && \
		{ test -f go.mod || go mod init ghubai-tray-jaeger >/dev/null 2>&1; } && \
		go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@v$(JAEGER_VERSION) && \
		go build -trimpath -o $@ github.com/jaegertracing/jaeger/cmd/jaeger; \
	else echo "NOTE: Go is missing; the real-Jaeger test will be skipped"; fi

# make run installs only what running needs: no test toolchain, no llama.cpp build.
run-system-deps:
	@$(call apt_install,$(RUN_APT_PACKAGES))

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[menu]'
	@touch $@

run: run-system-deps $(VENV)/.run-installed
	$(BIN)/ghubai-tray

# Coverage of what the suite runs in its own process, with a floor a little under the
# figure measured (73% of ghubai_tray on 2026-12-02): a change that leaves code untested
# fails here. The real processes the tests start (the CLI, the tray) are not counted.
COVERAGE_FLOOR = 70
test: setup
	$(BIN)/pytest --cov=ghubai_tray --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)

# The fast loop, with no set-up beyond the venv (nothing built, no display, no servers):
# the pure core, the desktop's renderers and the architecture rules, in seconds.
# make lint typecheck unit
UNIT_TESTS = tests/core tests/test_architecture.py tests/desktop/test_tray_render.py \
	tests/desktop/test_notifications.py
unit: python-deps
	$(BIN)/pytest -q $(UNIT_TESTS)

lint: python-deps
	$(BIN)/ruff check .

typecheck: python-deps
	$(BIN)/mypy

check: setup lint typecheck
	$(BIN)/pytest

# The hub, the Ollama stand-in and the tray, with a request through the hub every
# 5 s (DEMO_ARGS="--llm" for real tokens from the real Ollama, "--headless" without a display).
demo: python-deps
	$(BIN)/python -m tests.testbed.demo $(DEMO_ARGS)

# Steady load with random faults; fails if memory grows or a request hangs (SOAK_SECONDS=120
# in CI, 10 minutes by default).
SOAK_SECONDS ?= 600
soak: setup
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

# Every property test (hypothesis marks each @given test "hypothesis": tags, framing,
# validation, endpoints, fragments, hub records, logs, client errors, and arbitrary
# invocations into a live worker) with at least 10,000 generated cases each. Selected by
# the marker, so a new property test joins without being listed here.
# The property tests are independent and CPU-bound: one pytest-xdist worker per core.
FUZZ_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q --timeout 1800 -n $(FUZZ_WORKERS) -m hypothesis tests

# Benchmarks print figures and ratios against a baseline measured in the same run; they
# never pass or fail. BENCH_ARGS="--quick" for a short run; --write keeps bench/RESULTS.md.
bench: setup
	xvfb-run -a $(BIN)/python -m bench.run $(BENCH_ARGS)

# The real Ollama direct and through the worker (BENCH_ARGS="--write" keeps the table).
bench-ollama: setup
	$(BIN)/python -m bench.real_ollama $(BENCH_ARGS)

# The relay with llama.cpp's llama-server beside the real Ollama: first token, chunk
# gaps and the worker's CPU per chunk, each against its direct baseline.
bench-servers: setup
	$(BIN)/python -m bench.model_servers $(BENCH_ARGS)

# What keeping the ledger costs a request on the event loop, and the relay beside it.
bench-ledger: setup
	$(BIN)/python -m bench.ledger $(BENCH_ARGS)

# Many workers on one test hub, the hub restarted: the time until all are back, the peak
# of negotiations per second, each idle worker's memory and CPU (BENCH_ARGS="--write").
bench-fleet: setup
	$(BIN)/python -m bench.fleet $(BENCH_ARGS)

# What hostile bodies cost the real Ollama, straight and through the worker, and the
# worker's memory for them (BENCH_ARGS="--write" keeps the tables).
bench-hostile: setup
	$(BIN)/python -m bench.hostile_cost $(BENCH_ARGS)

# -- distribution (installer/) ------------------------------------------------------
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' ghubai_tray/__init__.py)
BUNDLE  := build/dist/ghubai-tray

$(VENV)/.dist-tools: $(VENV)/.installed
	$(BIN)/pip install -q "pyinstaller>=6.10,<7"
	@touch $@

# PyInstaller one-folder bundle; under xvfb-run because pystray's hook imports its backends.
bundle: setup $(VENV)/.dist-tools
	rm -rf $(BUNDLE)
	xvfb-run -a $(BIN)/pyinstaller --noconfirm --log-level WARN --distpath build/dist \
		--workpath build/work installer/ghubai-tray.spec 2>&1 | grep -v -e GError -e _child -e '^ ' || true
	@test -x $(BUNDLE)/ghubai-tray
	@du -s --apparent-size --block-size=1K $(BUNDLE) | \
		awk '{printf "bundle: %.1f MiB (%.1f MB) unpacked in $(BUNDLE)\n", $$1/1024, $$1*1.024/1000}' 

deb: bundle
	bash installer/linux/build-deb.sh $(BUNDLE) dist $(BIN)/python

tarball: bundle
	rm -rf build/tar && mkdir -p build/tar dist
	cp -a $(BUNDLE) build/tar/ghubai-tray
	install -Dm644 installer/linux/ghubai-tray.desktop build/tar/ghubai-tray/share/ghubai-tray.desktop
	install -Dm644 installer/linux/ghubai-tray.service build/tar/ghubai-tray/share/ghubai-tray.service
	install -Dm644 installer/linux/INSTALL.md build/tar/ghubai-tray/INSTALL.md
	install -Dm644 assets/ghubai-256.png build/tar/ghubai-tray/share/icons/ghubai-tray-256.png
	tar -C build/tar -czf dist/ghubai-tray-$(VERSION)-linux-x86_64.tar.gz ghubai-tray
	@echo dist/ghubai-tray-$(VERSION)-linux-x86_64.tar.gz

dist: deb tarball
	@ls -la dist/

# Install the .deb here, run it (version, doctor, headless against the test hub, the tray
# under Xvfb), remove it, and check what is left (as root, as in CI).
dist-check: dist
	GHUBAI_DEB=$$(ls dist/ghubai-tray_$(VERSION)_amd64.deb) $(BIN)/pytest -q -m dist

# -- The container (installer/Dockerfile) ---------------------------------------------
# make docker: the image from PyPI on python:3.11-slim, as an operator builds it (needs a
# registry). make docker-check: Debian's Docker engine and debootstrap installed and the
# engine started (as root), the image built on a Debian base made by debootstrap from a
# wheelhouse made here (no registry reachable; tests/testbed/container.py), then run
# against the test hub and the Ollama stand-in (tests/test_container.py), and its size said.
DOCKER_IMAGE ?= ghubai-tray:$(VERSION)
DOCKER_CHECK_IMAGE := ghubai-tray:check

docker:
	DOCKER_BUILDKIT=0 docker build -f installer/Dockerfile -t $(DOCKER_IMAGE) .

docker-deps:
	@$(call apt_install,docker.io debootstrap)
	@if ! docker info >/dev/null 2>&1; then \
		if [ "$$(id -u)" != 0 ]; then echo "The Docker engine is not running (start it as root: dockerd)"; exit 1; fi; \
		mkdir -p $(CACHE); echo "Starting the Docker engine (its log: $(CACHE)/dockerd.log)"; \
		nohup dockerd >$(CACHE)/dockerd.log 2>&1 & \
		for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
		docker info >/dev/null 2>&1 || { tail -20 $(CACHE)/dockerd.log; exit 1; }; \
	fi

docker-check: docker-deps python-deps
	$(BIN)/python -m tests.testbed.container --tag $(DOCKER_CHECK_IMAGE)
	GHUBAI_DOCKER_IMAGE=$(DOCKER_CHECK_IMAGE) $(BIN)/pytest -q -p no:cacheprovider -m docker tests/test_container.py
	@docker image inspect -f '{{.Size}}' $(DOCKER_CHECK_IMAGE) | \
		awk '{printf "The image: %.0f MB (on the Debian base made by debootstrap)\n", $$1 / 1e6}'

# -- Windows, on the official Windows CPython under Wine (tests/testbed/wine.py) -----------
# Wine and mingw-w64 (for the Wine lane's bcryptprimitives.dll) from Debian; CPython 3.11
# for Windows, tkinter and installer/windows/requirements.txt as win_amd64 wheels from PyPI,
# cached outside the checkout (about a minute the first time). Every run: a fresh prefix.
WINE_PACKAGES := wine wine64 gcc-mingw-w64-x86-64-win32 xvfb nsis
WINDOWS := $(BIN)/python -m tests.testbed.wine
WINDIST := build/windist/ghubai-tray
SETUP_EXE := dist/ghubai-tray-$(VERSION)-setup.exe

windows-deps: python-deps
	@$(call apt_install,$(WINE_PACKAGES))
	@$(WINDOWS) toolchain

# The test suite on Windows CPython (WINDOWS_TEST_ARGS to choose tests), under a virtual
# display: the Settings window's tests draw real Tk windows through Wine's X11 driver.
WINDOWS_TEST_ARGS ?=
test-windows: windows-deps
	xvfb-run -a $(WINDOWS) python -m pytest -p no:cacheprovider $(WINDOWS_TEST_ARGS)

# The Windows bundle (PyInstaller on Windows CPython) and its 64-bit per-user installer.
dist-windows: windows-deps
	rm -rf build/windist build/winwork && mkdir -p dist
	xvfb-run -a $(WINDOWS) python -m PyInstaller --noconfirm --log-level WARN \
		--distpath build/windist --workpath build/winwork installer/ghubai-tray.spec
	@test -f $(WINDIST)/ghubai-tray.exe && test -f $(WINDIST)/ghubai-tray-cli.exe
	cd installer/windows && makensis -V2 -DVERSION=$(VERSION) -DSTAGE=$(CURDIR)/$(WINDIST) \
		-DOUTFILE=$(CURDIR)/$(SETUP_EXE) ghubai-tray.nsi
	@du -s --apparent-size --block-size=1K $(WINDIST) | \
		awk '{printf "Windows bundle: %.1f MiB unpacked in $(WINDIST)\n", $$1/1024}'
	@ls -l $(SETUP_EXE)

# Install the setup.exe in a fresh prefix, run what it installed (console entry, headless
# against the test hub, the tray under Xvfb), upgrade over it, uninstall it.
dist-windows-check: dist-windows
	GHUBAI_SETUP_EXE=$(CURDIR)/$(SETUP_EXE) $(BIN)/pytest -q -m windist tests/test_windows_dist.py

# Updating as installed (tests/test_windows_update.py): two test builds, OLD and NEW, of
# copies of this tree that carry a release key made for the run; the OLD one, installed
# and sharing, installs the NEW one from a releases feed on loopback.
UPDATE_TEST := build/update-test
UPDATE_OLD := 0.0.1
UPDATE_NEW := 0.0.2
dist-windows-update-check: windows-deps
	rm -rf $(UPDATE_TEST) && mkdir -p $(UPDATE_TEST)/key
	minisign -G -W -p $(UPDATE_TEST)/key/test.pub -s $(UPDATE_TEST)/key/test.sec </dev/null >/dev/null
	for v in $(UPDATE_OLD) $(UPDATE_NEW); do \
		src=$(UPDATE_TEST)/src-$$v && mkdir -p $$src && cp -a ghubai_tray installer assets $$src/ && \
		find $$src -name __pycache__ -prune -exec rm -rf {} + && \
		sed -i "s/^__version__ = .*/__version__ = \"$$v\"/" $$src/ghubai_tray/__init__.py && \
		cp $(UPDATE_TEST)/key/test.pub $$src/ghubai_tray/release-key.pub && \
		xvfb-run -a $(WINDOWS) python -m PyInstaller --noconfirm --log-level WARN \
			--distpath $(UPDATE_TEST)/dist-$$v --workpath $(UPDATE_TEST)/work-$$v \
			$$src/installer/ghubai-tray.spec && \
		(cd installer/windows && makensis -V2 -DVERSION=$$v \
			-DSTAGE=$(CURDIR)/$(UPDATE_TEST)/dist-$$v/ghubai-tray \
			-DOUTFILE=$(CURDIR)/$(UPDATE_TEST)/ghubai-tray-$$v-setup.exe ghubai-tray.nsi) \
		|| exit 1; \
	done
	GHUBAI_UPDATE_TEST=$(CURDIR)/$(UPDATE_TEST) GHUBAI_UPDATE_OLD=$(UPDATE_OLD) \
		GHUBAI_UPDATE_NEW=$(UPDATE_NEW) $(BIN)/pytest -q -m windist tests/test_windows_update.py

# The Windows build's sizes and the installed tray's idle memory under Wine (after
# dist-windows; BENCH_ARGS="--write" keeps the table in bench/RESULTS.md).
bench-windows: windows-deps
	$(BIN)/python -m bench.windows $(BENCH_ARGS)

# -- Releases (.github/workflows/release.yml runs these; README, "Checking a download") -----
# TAG=v1.2.3: the tag names ghubai_tray's version and CHANGELOG.md has its dated section.
release-check: python-deps
	$(BIN)/python installer/release.py check $(TAG)

# The changelog's section for VERSION (default: this one), as the release page's notes.
release-notes: python-deps
	@$(BIN)/python installer/release.py notes $(VERSION)

# RELEASE_DIR/SHA256SUMS for every file there, signed with MINISIGN_KEY (minisign's secret
# key, unencrypted) into SHA256SUMS.minisig and checked with MINISIGN_PUB when given.
RELEASE_DIR ?= dist/release
release-sums: python-deps
	$(BIN)/python installer/release.py sums $(RELEASE_DIR) $(if $(MINISIGN_KEY),--key $(MINISIGN_KEY))
	@if [ -n "$(MINISIGN_PUB)" ]; then minisign -V -p $(MINISIGN_PUB) -m $(RELEASE_DIR)/SHA256SUMS; fi
	cd $(RELEASE_DIR) && sha256sum --check --quiet SHA256SUMS

# What the release workflow's last job does, on this CI's own builds, with a key made for
# the run: the builds of dist/ under their release names, summed, signed, and checked by
# minisign and sha256sum.
release-dry-run: python-deps
	rm -rf build/release-key $(RELEASE_DIR) && mkdir -p build/release-key
	$(BIN)/python installer/release.py stage dist $(RELEASE_DIR)
	minisign -G -W -p build/release-key/test.pub -s build/release-key/test.sec </dev/null >/dev/null
	$(MAKE) --no-print-directory release-sums MINISIGN_KEY=build/release-key/test.sec \
		MINISIGN_PUB=build/release-key/test.pub

# A new release key pair, once, by a maintainer: the secret goes into the repository's
# secret RELEASE_MINISIGN_KEY (never into the repository), the public half into
# ghubai_tray/release-key.pub, the README and the app.
release-key:
	@test ! -e ghubai_tray/release-key.pub || { echo "ghubai_tray/release-key.pub exists"; exit 1; }
	minisign -G -W -p ghubai_tray/release-key.pub -s release-key.sec </dev/null
	@echo "Now: put release-key.sec's content into the repository secret RELEASE_MINISIGN_KEY,"
	@echo "delete release-key.sec, and commit ghubai_tray/release-key.pub."

# Every GitHub workflow checked by actionlint (from the Go module proxy, cached).
ACTIONLINT_VERSION := 1.7.12
ACTIONLINT := $(CACHE)/actionlint-v$(ACTIONLINT_VERSION)/actionlint
workflows-lint: go-deps
	$(ACTIONLINT) -no-color

clean:
	rm -rf $(VENV) tests/conformance/node_modules .pytest_cache .mypy_cache .ruff_cache build dist
