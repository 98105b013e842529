# clipnn build. Targets: all (default), test, demo, bench, deps, install, uninstall, figures, report-check,
# clean.
# SAN=1 builds into build-san/ with AddressSanitizer + UndefinedBehaviorSanitizer.
# make install PREFIX=/usr/local DESTDIR=   (uninstall with the same PREFIX and DESTDIR)
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
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
SUITES   := $(patsubst tests/test_%.c,%,$(sort $(wildcard tests/test_*.c)))

LIB      := $(BUILD)/libclipnn.a
# The shared library: libclipnn.so.MAJOR.MINOR.PATCH with soname libclipnn.so.MAJOR (CN_VERSION).
VERSION  := $(shell sed -n 's/^\#define CN_VERSION "\(.*\)"/\1/p' src/tensor/core.h)
MAJOR    := $(firstword $(subst ., ,$(VERSION)))
SONAME   := libclipnn.so.$(MAJOR)
SOLIB    := $(BUILD)/libclipnn.so.$(VERSION)
BIN      := $(BUILD)/clipnn
TESTBIN  := $(BUILD)/clipnn_tests
EX_BIN   := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test test-run demo bench fuzz deps check-deps clean examples install uninstall figures report-check
.DEFAULT_GOAL := all

all: check-deps
	@$(MAKE) --no-print-directory $(LIB) $(SOLIB) $(BIN) $(EX_BIN)

check-deps:
	@scripts/deps.sh --check

deps:
	@scripts/deps.sh

# The test command of the README: installs missing packages, builds, runs every Check suite.
test: deps
	@$(MAKE) --no-print-directory test-run

# CLIPNN_MAKE / CLIPNN_LDSAN: how tests/install_test.sh installs this build and links against it.
test-run: $(TESTBIN) $(BIN) $(LIB) $(SOLIB) | $(BUILD)/include/clipnn
	@cd tests && CLIPNN_BIN=../$(BIN) CLIPNN_MAKE="$(MAKE) -s --no-print-directory -C $(CURDIR) SAN=$(SAN) BUILD=$(BUILD)" \
	  CLIPNN_LDSAN="$(LDSAN)" CLIPNN_CC="$(CC)" CLIPNN_BUILD="$(abspath $(BUILD))" $(if $(filter 1,$(SAN)),CK_FORK=no ASAN_OPTIONS=detect_leaks=1,) ../$(TESTBIN)

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

# Re-measures every figure of README.md and examples/README.md on this host (scripts/figures.sh).
figures: all
	@scripts/figures.sh $(BUILD)

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

$(SOLIB): $(PIC_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDSAN) $(shell pkg-config --libs openblas libcjson 2>/dev/null) -lm

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(OPT) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS_ALL)

$(TESTBIN): $(TEST_OBJ) $(LIB)
	$(CC) $(OPT) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS_ALL)

# Examples include <clipnn/clipnn.h> as an installed program does: $(BUILD)/include/clipnn is src/.
$(BUILD)/include/clipnn:
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR)/src $@

$(BUILD)/examples/%: examples/%.c $(LIB) | $(BUILD)/include/clipnn
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -I$(BUILD)/include -o $@ $< $(LIB) $(LDLIBS_ALL)

# The suite list is generated from the file names: tests/test_foo.c defines Suite *suite_foo(void).
$(BUILD)/suites.h: $(wildcard tests/test_*.c) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach s,$(SUITES),'CN_SUITE($(s))') > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/main.o: $(BUILD)/suites.h

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

# ---- install / uninstall ----
# The public headers: clipnn.h and what it includes (they include each other by relative paths).
PUBLIC_HDR := src/clipnn.h src/tensor/core.h src/tensor/tensor.h src/tensor/rng.h src/tensor/state.h \
              src/json/json.h src/autograd/autograd.h src/layers/layers.h src/optim/optim.h src/clip/clip.h \
              src/data/data.h src/io/safetensors.h
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
INSTALLED  := $(BINDIR)/clipnn $(LIBDIR)/libclipnn.a $(LIBDIR)/libclipnn.so.$(VERSION) $(LIBDIR)/$(SONAME) \
              $(LIBDIR)/libclipnn.so $(LIBDIR)/pkgconfig/clipnn.pc $(MANDIR)/man1/clipnn.1 \
              $(PUBLIC_HDR:src/%=$(INCLUDEDIR)/clipnn/%)

PC_LIBDIR  = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCDIR  = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/clipnn
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libclipnn.a
	install -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/libclipnn.so.$(VERSION)
	ln -sf libclipnn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libclipnn.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(PC_LIBDIR)' 'includedir=$(PC_INCDIR)' '' \
	  'Name: clipnn' 'Description: Neural-network training in C with built-in, pluggable gradient clipping' \
	  'Version: $(VERSION)' 'Requires: openblas, libcjson' 'Libs: -L$${libdir} -lclipnn' 'Libs.private: -lm' \
	  'Cflags: -I$${includedir}' > $(DESTDIR)$(LIBDIR)/pkgconfig/clipnn.pc
	install -m 644 docs/clipnn.1 $(DESTDIR)$(MANDIR)/man1/clipnn.1
	@for h in $(PUBLIC_HDR:src/%=%); do \
	  install -d $(DESTDIR)$(INCLUDEDIR)/clipnn/$$(dirname $$h) && \
	  install -m 644 src/$$h $(DESTDIR)$(INCLUDEDIR)/clipnn/$$h || exit 1; done

# Removes exactly the installed files, then the include/clipnn folders if they are left empty.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@for d in $(sort $(dir $(PUBLIC_HDR:src/%=$(INCLUDEDIR)/clipnn/%))); do \
	  rmdir $(DESTDIR)$$d 2>/dev/null || true; done
	@rmdir $(DESTDIR)$(INCLUDEDIR)/clipnn 2>/dev/null || true

clean:
	rm -rf build build-san build-*

-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
