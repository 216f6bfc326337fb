# agentd — `make run` and `make test` are the two commands; see README.md.

PORT       ?= 8080
VARIANT    ?= release
BUILD      := build/$(VARIANT)
PKGS       := libmicrohttpd libcjson sqlite3 libcurl

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
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL  = $(BASEFLAGS) $(OPTFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL  = $(OPTFLAGS) -pthread $(PKG_LIBS) -lm $(LDFLAGS)

LIB_SRC    := $(sort $(wildcard base/*.c config/*.c server/*.c handlers/*.c pipeline/*.c \
                               model/*.c llm/*.c storage/*.c))
LIB_SRC    := $(filter-out server/main.c,$(LIB_SRC))
UNIT_SRC   := $(sort $(wildcard tests/unit/*.c tests/unit/*/*.c))
E2E_SRC    := $(sort $(wildcard tests/e2e/*.c))
FAKE_SRC   := $(sort $(wildcard tests/fake/*.c))
TCOMMON_SRC := $(sort $(wildcard tests/common/*.c))

LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
E2E_OBJ    := $(E2E_SRC:%.c=$(BUILD)/obj/%.o)
FAKE_OBJ   := $(filter-out $(BUILD)/obj/tests/fake/main.o,$(FAKE_SRC:%.c=$(BUILD)/obj/%.o))
TCOMMON_OBJ := $(TCOMMON_SRC:%.c=$(BUILD)/obj/%.o)

AGENTD     := $(BUILD)/agentd
UNIT_BIN   := $(BUILD)/unit_tests
E2E_BIN    := $(BUILD)/e2e_tests
FAKE_BIN   := $(BUILD)/fake_gemini

.PHONY: all deps run test check check-threads build lint bench clean format

all: build

deps:
	@scripts/deps.sh build

build: $(AGENTD)
ifeq ($(VARIANT),release)
	@mkdir -p bin && cp -f $(AGENTD) bin/agentd
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(AGENTD): $(LIB_OBJ) $(BUILD)/obj/server/main.o
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(UNIT_BIN): $(UNIT_OBJ) $(LIB_OBJ) $(FAKE_OBJ) $(TCOMMON_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs check)

$(E2E_BIN): $(E2E_OBJ) $(LIB_OBJ) $(FAKE_OBJ) $(TCOMMON_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL) $(shell pkg-config --libs check)

$(FAKE_BIN): $(BUILD)/obj/tests/fake/main.o $(FAKE_OBJ) $(LIB_OBJ)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

run: deps
	@$(MAKE) --no-print-directory build VARIANT=release
	@mkdir -p data
	./bin/agentd --port $(PORT) --data-dir ./data

# One variant: unit tests, then end-to-end tests against the real binary.
check: $(AGENTD) $(UNIT_BIN) $(E2E_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CK_DEFAULT_TIMEOUT=120 $(UNIT_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  CK_DEFAULT_TIMEOUT=300 AGENTD_BIN=$(AGENTD) AGENTD_SHARED=$(SHARED) $(E2E_BIN)

SHARED ?= $(abspath ../shared)

# The suites whose threads share state (the llm loop, deferred responses,
# streams, the worker pool), again under ThreadSanitizer.
check-threads: $(AGENTD) $(UNIT_BIN) $(E2E_BIN)
	TSAN_OPTIONS=halt_on_error=1 $(UNIT_BIN) llm_client
	TSAN_OPTIONS=halt_on_error=1 AGENTD_BIN=$(AGENTD) AGENTD_SHARED=$(SHARED) $(E2E_BIN) e2e_inference
	TSAN_OPTIONS=halt_on_error=1 AGENTD_BIN=$(AGENTD) AGENTD_SHARED=$(SHARED) $(E2E_BIN) e2e_pipeline

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory check VARIANT=release
	@$(MAKE) --no-print-directory check VARIANT=asan
	@$(MAKE) --no-print-directory check-threads VARIANT=tsan
	@$(MAKE) --no-print-directory build VARIANT=release

lint:
	@scripts/deps.sh lint
	rm -rf build/lint
	bear --output compile_commands.json -- $(MAKE) --no-print-directory build/lint/agentd VARIANT=lint
	cppcheck --project=compile_commands.json --enable=warning,performance,portability \
	  --error-exitcode=1 --inline-suppr --suppress=missingIncludeSystem -q

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build VARIANT=release
	bench/run.sh

format:
	clang-format -i $(LIB_SRC) server/main.c $(UNIT_SRC) $(E2E_SRC) $(FAKE_SRC) */*.h tests/*/*.h

clean:
	rm -rf build bin compile_commands.json

-include $(shell find build -name '*.d' 2>/dev/null)
