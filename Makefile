# agentd — `make run` and `make test` are the two commands; see README.md.

VARIANT    ?= release
BUILD      := build/$(VARIANT)
PKGS       := libmicrohttpd libcjson sqlite3 libpq libcurl libutf8proc libcrypto
# libstemmer ships no pkg-config file.
NOPC_LIBS  := -lstemmer

CC         ?= gcc
WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -Wcast-qual -Wsign-compare -Wpointer-arith -Wformat=2
BASEFLAGS  := -std=c11 -D_GNU_SOURCE -I. -pthread -g $(WARN)
ifeq ($(VARIANT),asan)
  OPTFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(VARIANT),tsan)
  OPTFLAGS := -O1 -fsanitize=thread
else
  OPTFLAGS := -O2
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(NOPC_LIBS)
CFLAGS_ALL  = $(BASEFLAGS) $(OPTFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL  = $(OPTFLAGS) -pthread $(PKG_LIBS) -lm $(LDFLAGS)

LIB_SRC    := $(sort $(wildcard base/*.c config/*.c server/*.c api/*.c handlers/*.c pipeline/*.c \
                               model/*.c llm/*.c storage/*.c))
LIB_SRC    := $(filter-out server/main.c,$(LIB_SRC))
UNIT_SRC   := $(sort $(wildcard tests/unit/*.c tests/unit/*/*.c))
E2E_SRC    := $(sort $(wildcard tests/e2e/*.c))
FAKE_SRC   := $(sort $(wildcard tests/fake/*.c))
TCOMMON_SRC := $(sort $(wildcard tests/common/*.c))
# agentctl (ctl/): the command-line client; it links base/ and nothing else of
# the server, and talks to agentd over HTTP only (scripts/layers.rules).
CTL_SRC    := $(sort $(wildcard ctl/*.c))

# The dashboard (web/): tools/embed_assets, built with $(CC) for the build
# machine, writes its files into one generated C file, compiled into the
# library like any other source.
WEB_SRC    := $(sort $(wildcard web/*.html web/*.css web/*.svg web/*.js))
EMBED      := $(BUILD)/embed_assets
WEB_GEN    := $(BUILD)/gen/web_assets.c

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_assets.o
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
E2E_OBJ    := $(E2E_SRC:%.c=$(BUILD)/obj/%.o)
FAKE_OBJ   := $(filter-out $(BUILD)/obj/tests/fake/main.o,$(FAKE_SRC:%.c=$(BUILD)/obj/%.o))
TCOMMON_OBJ := $(TCOMMON_SRC:%.c=$(BUILD)/obj/%.o)
CTL_LIB_OBJ := $(filter-out $(BUILD)/obj/ctl/main.o,$(CTL_SRC:%.c=$(BUILD)/obj/%.o))
CTL_OBJ    := $(BUILD)/obj/ctl/main.o $(CTL_LIB_OBJ) $(filter $(BUILD)/obj/base/%,$(LIB_OBJ))

AGENTD     := $(BUILD)/agentd
UNIT_BIN   := $(BUILD)/unit_tests
E2E_BIN    := $(BUILD)/e2e_tests
FAKE_BIN   := $(BUILD)/fake_gemini
PGSERVER_BIN := $(BUILD)/pgserver
AGENTCTL   := $(BUILD)/agentctl

.PHONY: all deps run test check check-threads check-pg build lint bench clean format smoke-gemini

all: build

deps:
	@scripts/deps.sh build

build: $(AGENTD) $(AGENTCTL)
ifeq ($(VARIANT),release)
	@mkdir -p bin && cp -f $(AGENTD) bin/agentd && cp -f $(AGENTCTL) bin/agentctl
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The generator is built without the variant's sanitizers: it runs at build
# time only, and its output is the same whichever variant runs it. A failed
# run leaves no half-written file for the next make to trust.
%/embed_assets: tools/embed_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O2 -o $@ $<

.SECONDARY: $(EMBED)

# The list of web/'s files, rewritten only when it changes: a file removed
# from web/ (or renamed) leaves every remaining one as old as the table, so
# without it the table would go on serving the file that is gone.
%/gen/web_assets.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(WEB_SRC)' | cmp -s - $@ || echo '$(WEB_SRC)' > $@

.SECONDARY: $(BUILD)/gen/web_assets.list

FORCE:

%/gen/web_assets.c: %/embed_assets %/gen/web_assets.list $(WEB_SRC)
	@mkdir -p $(dir $@)
	$< $@.tmp $(WEB_SRC) && mv -f $@.tmp $@

$(BUILD)/obj/gen/web_assets.o: $(WEB_GEN) web/assets.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(AGENTD): $(LIB_OBJ) $(BUILD)/obj/server/main.o
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(AGENTCTL): $(CTL_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(UNIT_BIN): $(UNIT_OBJ) $(LIB_OBJ) $(CTL_LIB_OBJ) $(FAKE_OBJ) $(TCOMMON_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs check)

$(E2E_BIN): $(E2E_OBJ) $(LIB_OBJ) $(FAKE_OBJ) $(TCOMMON_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs check)

$(FAKE_BIN): $(BUILD)/obj/tests/fake/main.o $(FAKE_OBJ) $(LIB_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# tests/common/pgserver as a command: the bench scenarios on PostgreSQL start
# their throwaway server with it.
$(PGSERVER_BIN): $(BUILD)/obj/tests/pgserver/main.o $(BUILD)/obj/tests/common/pgserver.o
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# `make run PORT=9000 DATA_DIR=/srv/agentd`: a flag only for what is given on
# make's command line (PORT in the environment is often another program's),
# so otherwise AGENTD_PORT, AGENTD_DATA_DIR or a config file decide (agentd's
# defaults: 8080 and ./data, which agentd creates).
run_given = $(and $(filter command line,$(origin $(1))),$($(1)))
RUN_FLAGS = $(if $(call run_given,PORT),--port $(PORT)) $(if $(call run_given,DATA_DIR),--data-dir $(DATA_DIR))

run: deps
	@$(MAKE) --no-print-directory build VARIANT=release
	./bin/agentd $(strip $(RUN_FLAGS))

# One variant: unit tests, then end-to-end tests against the real binary. The
# release variant also checks the layering (scripts/check_layers.sh), compiles
# the fuzz targets (tests/fuzz/), checks every response the e2e run received against
# openapi.yaml (the contract test: tests/contract/), runs the README's
# examples in order against a fresh server (tests/readme/run_examples.py),
# checks the Dockerfile's promises (tests/image/check_dockerfile.py), and checks
# the paraphrase sets and bench/quality.py (tests/quality/test_quality.py).
# Release also runs the browser tests (tests/browser/: the dashboard and the
# original service's page in Debian's chromium, screenshots in $(BUILD)/browser).
CONTRACT_LOG := $(abspath $(BUILD)/contract.jsonl)
NODE_TOOLS   := node_modules/.package-lock.json
ifeq ($(VARIANT),release)
CHECK_TOOLS  := $(NODE_TOOLS)
E2E_ENV      := AGENTD_CONTRACT_LOG=$(CONTRACT_LOG)
endif

check: $(AGENTD) $(AGENTCTL) $(UNIT_BIN) $(E2E_BIN) $(FAKE_BIN) $(CHECK_TOOLS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CK_DEFAULT_TIMEOUT=120 tests/common/run_suites.sh $(UNIT_BIN) $(E2E_JOBS) $(BUILD)/unit-logs
	rm -f $(CONTRACT_LOG)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CK_DEFAULT_TIMEOUT=300 AGENTD_BIN=$(AGENTD) AGENTCTL_BIN=$(AGENTCTL) \
	  AGENTD_E2E_BACKEND=$(E2E_BACKEND) $(E2E_ENV) tests/common/run_suites.sh $(E2E_BIN) $(E2E_JOBS) $(BUILD)/e2e-logs
ifeq ($(VARIANT),release)
	$(LAYERS)
	$(FUZZ_SYNTAX)
	$(REDOCLY) lint --format=stylish openapi.yaml
	node --test tests/contract/contract.test.mjs
	node tests/contract/validate.mjs openapi.yaml $(CONTRACT_LOG)
	AGENTD_BIN=$(AGENTD) FAKE_GEMINI_BIN=$(FAKE_BIN) BROWSER_OUT=$(abspath $(BUILD))/browser node --test tests/browser/
	python3 tests/readme/test_run_examples.py
	python3 tests/readme/run_examples.py $(AGENTD) README.md
	python3 tests/image/check_dockerfile.py Dockerfile
	AGENTD_BIN=$(AGENTD) python3 tests/quality/test_quality.py
endif

# The fuzz targets run only under `make fuzz` (clang, libFuzzer), but every
# release check compiles them, so that a change to what they call cannot
# break them unseen.
FUZZ_SYNTAX = for t in tests/fuzz/*.c; do \
	  $(CC) $(BASEFLAGS) -Wno-format-nonliteral $(PKG_CFLAGS) -fsyntax-only $$t || exit 1; done

# The npm tools (package-lock.json): installed again when the lockfile changes.
$(NODE_TOOLS): package-lock.json
	@scripts/deps.sh test

# The suites whose threads share state (the llm loop, deferred responses,
# streams, the worker pool with its heartbeat, a training stop reaching running workers, the
# maintenance thread and postponed jobs on a full disk, the per-caller
# limits under concurrent requests, the PostgreSQL driver's units of work,
# snapshots and racing migrations, the token checks' throttles shared by
# the HTTP threads, inference while deployments switch, the metrics' sharded
# counters added to from every thread), again under ThreadSanitizer.
check-threads: $(AGENTD) $(UNIT_BIN) $(E2E_BIN)
	TSAN_OPTIONS=halt_on_error=1 tests/common/run_suites.sh $(UNIT_BIN) 2 $(BUILD)/tsan-unit-logs \
	  base_prom pipeline_eta pipeline_pool storage_jobs_pg llm_client handlers_agents api_stream \
	  server_limits storage_pg
	TSAN_OPTIONS=halt_on_error=1 AGENTD_BIN=$(AGENTD) tests/common/run_suites.sh $(E2E_BIN) 2 \
	  $(BUILD)/tsan-e2e-logs e2e_inference e2e_pipeline e2e_compat e2e_storage e2e_fair e2e_tokens \
	  e2e_deployments e2e_metrics

# The e2e suites on PostgreSQL: AGENTD_E2E_BACKEND=pg starts one throwaway
# server (tests/common/pgserver.c) and gives every agentd start a fresh
# database. `make test` runs the e2e suites on SQLite in the release pass
# and on PostgreSQL in the ASan pass (check E2E_BACKEND=pg), so each backend
# gets every suite once and the ten minutes hold. `make check-pg
# SUITE=e2e_agents` runs one suite on PostgreSQL (any VARIANT).
E2E_BACKEND ?=
# e2e suites run at once (tests/common/run_suites.sh): they mostly wait.
E2E_JOBS ?= 3
check-pg: $(AGENTD) $(AGENTCTL) $(E2E_BIN) $(FAKE_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CK_DEFAULT_TIMEOUT=300 AGENTD_BIN=$(AGENTD) AGENTCTL_BIN=$(AGENTCTL) AGENTD_E2E_BACKEND=pg $(E2E_BIN) $(SUITE)

# The builds use every core (a recipe's own lines, the test runs, stay in
# order); CI's budget for the whole of `make test` is ten minutes.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test:
	@scripts/deps.sh test
	tests/lint/check_storage_seam_test.sh
	@$(MAKE) --no-print-directory -j$(JOBS) check VARIANT=release
	@$(MAKE) --no-print-directory -j$(JOBS) check VARIANT=asan E2E_BACKEND=pg
	@$(MAKE) --no-print-directory -j$(JOBS) check-threads VARIANT=tsan
	@$(MAKE) --no-print-directory -j$(JOBS) build VARIANT=release

# The OpenAPI description is linted by Redocly's CLI (recommended rules, see
# redocly.yaml), pinned in package-lock.json; it must report no error.
REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly

# The arrows between modules (scripts/layers.rules): no include of server/
# below it, storage/ knowing nothing above it, libmicrohttpd, libcurl and
# SQLite each in their one folder. The checker's own test runs first. And no
# SQL, SQLite name or raw transaction above storage/ (scripts/check_storage_seam.sh).
LAYERS := tests/layers/test_check_layers.sh && scripts/check_layers.sh

# cppcheck sees what bear recorded, which includes tools/embed_assets.c and
# the file it generates (build/lint/gen/web_assets.c): both are checked on
# purpose, the generated one is compiled into agentd like any other (it adds
# about 3 s).
lint:
	@scripts/deps.sh lint
	$(LAYERS)
	scripts/check_storage_seam.sh
	$(REDOCLY) lint --format=stylish openapi.yaml
	rm -rf build/lint
	bear --output compile_commands.json -- $(MAKE) --no-print-directory build/lint/agentd build/lint/agentctl VARIANT=lint
	cppcheck --project=compile_commands.json --enable=warning,performance,portability \
	  --error-exitcode=1 --inline-suppr --suppress=missingIncludeSystem -q

# A few real calls to Google with GEMINI_API_KEY (skipped, saying so, without
# it): checks a key and a model. Not part of `make test`.
smoke-gemini:
	@scripts/deps.sh smoke
	@$(MAKE) --no-print-directory build VARIANT=release
	AGENTD_BIN=$(BUILD)/agentd scripts/smoke_gemini.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build build/release/pgserver VARIANT=release
	bench/run.sh

format:
	clang-format -i $(LIB_SRC) server/main.c tools/*.c $(CTL_SRC) $(UNIT_SRC) $(E2E_SRC) $(FAKE_SRC) */*.h tests/*/*.h

clean:
	rm -rf build bin compile_commands.json

-include $(shell find build -name '*.d' 2>/dev/null)

# Fuzzing (tests/fuzz/, libFuzzer): `make fuzz` builds every target with clang
# into build/fuzz/ (the library compiled apart from the gcc objects) and runs
# each for FUZZ_SECONDS on a temporary copy of its corpus, so what it finds is
# not committed by accident. Every target runs; if any crashed (its input is
# left in build/fuzz/artifacts/) the run fails at the end. Not part of `make test`.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -I. -pthread -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
                $(WARN) -Wno-format-nonliteral $(PKG_CFLAGS)
FUZZ_LDLIBS   = $(FUZZ_SAN) -pthread $(PKG_LIBS) -lm
FUZZ_NAMES   := $(sort $(basename $(notdir $(wildcard tests/fuzz/*.c))))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/gen/web_assets.o

.PHONY: fuzz fuzz-build

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

.SECONDARY: $(FUZZ_DIR)/embed_assets $(FUZZ_DIR)/gen/web_assets.list

$(FUZZ_DIR)/obj/gen/web_assets.o: $(FUZZ_DIR)/gen/web_assets.c web/assets.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -o $@ $^ $(FUZZ_LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-build
	@mkdir -p $(FUZZ_DIR)/artifacts
	@failed=""; for t in $(FUZZ_NAMES); do \
	  corpus=$$(mktemp -d) || exit 1; \
	  cp tests/fuzz/corpus/$$t/* "$$corpus"/; \
	  echo "fuzz: $$t, $(FUZZ_SECONDS) s"; \
	  rc=0; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(FUZZ_DIR)/$$t -dict=tests/fuzz/$$t.dict -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- -print_final_stats=1 "$$corpus" \
	    >$(FUZZ_DIR)/$$t.log 2>&1 || rc=$$?; \
	  rm -rf "$$corpus"; \
	  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::average_exec_per_sec' $(FUZZ_DIR)/$$t.log; \
	  if [ $$rc -ne 0 ]; then \
	    grep -E -A12 'ERROR:|runtime error:' $(FUZZ_DIR)/$$t.log | head -n 40; \
	    echo "fuzz: $$t FAILED (exit $$rc); log $(FUZZ_DIR)/$$t.log, input in $(FUZZ_DIR)/artifacts/" >&2; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi
