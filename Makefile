# clipnn build. Targets: all (default), test, demo, bench, deps, report-check, clean.
# SAN=1 builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer.
# Never add -ffast-math or -Ofast: NaN/Inf detection is part of the product.

SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN   := -fsanitize=address,undefined
else
BUILD   ?= build
OPT     := -O2 -g
LDSAN   :=
endif

CC      ?= cc
PKGS    := openblas libcjson check
# Deferred (=) so that pkg-config runs only after the dependency check.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = -std=c11 $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-psabi \
             -D_POSIX_C_SOURCE=200809L -fno-fast-math -Isrc -I$(BUILD) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(LDSAN) $(PKG_LIBS) -lm $(LDLIBS)

LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c)) tests/main.c tests/testutil.c
EX_SRC   := $(sort $(wildcard examples/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
SUITES   := $(patsubst tests/test_%.c,%,$(sort $(wildcard tests/test_*.c)))

LIB      := $(BUILD)/libclipnn.a
BIN      := $(BUILD)/clipnn
TESTBIN  := $(BUILD)/clipnn_tests
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test test-run demo bench fuzz deps check-deps clean examples report-check
.DEFAULT_GOAL := all

all: check-deps
	@$(MAKE) --no-print-directory $(LIB) $(BIN) $(EX_BIN)

check-deps:
	@scripts/deps.sh --check

deps:
	@scripts/deps.sh

# The test command of the README: installs missing packages, builds, runs every Check suite.
test: deps
	@$(MAKE) --no-print-directory test-run

test-run: $(TESTBIN) $(BIN)
	@cd tests && CLIPNN_BIN=../$(BIN) $(if $(filter 1,$(SAN)),CK_FORK=no ASAN_OPTIONS=detect_leaks=1,) ../$(TESTBIN)

# The exploding-gradient RNN: no clipping vs norm / value / adaptive clipping, 5 seeds.
DEMO_OUT ?= runs/demo-explode
demo: deps
	@$(MAKE) --no-print-directory $(BIN)
	@rm -rf $(DEMO_OUT)
	@$(BIN) compare examples/rnn_adding_explode.json --seeds 5 --out $(DEMO_OUT)

# Side-by-side benchmark against PyTorch (when importable); writes build/bench.md.
bench: deps
	@$(MAKE) --no-print-directory $(BIN) $(LIB)
	@bench/run.sh $(BUILD)

# Bounded fuzzing of the parsers (needs clang; FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps.sh --extra clang libclang-rt-14-dev
	@fuzz/run.sh $(FUZZ_SECONDS)

# The compare report in a real browser (headless Chromium, installed when missing, with libpng for the
# screenshot checker): fails on console errors, an empty chart, a page wider than a 400 px window.
report-check:
	@scripts/deps.sh --extra chromium libpng-dev
	@$(MAKE) --no-print-directory $(BIN) $(BUILD)/tools/pngcheck
	@tests/browser/check.sh $(BUILD)

$(BUILD)/tools/pngcheck: tests/browser/pngcheck.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -Wall -Wextra $(shell pkg-config --cflags libpng 2>/dev/null) -o $@ $< \
	    $(LDSAN) $(shell pkg-config --libs libpng 2>/dev/null || echo -lpng)

examples: check-deps
	@$(MAKE) --no-print-directory $(EX_BIN)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(OPT) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS_ALL)

$(TESTBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(OPT) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS_ALL)

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL)

# The suite list is generated from the file names: tests/test_foo.c defines Suite *suite_foo(void).
$(BUILD)/suites.h: $(wildcard tests/test_*.c) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(SUITES),'CN_SUITE($(s))') > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/main.o: $(BUILD)/suites.h

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

clean:
	rm -rf build build-san build-*

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
