# kiln — one binary, one library of modules that the unit tests link against.
# Sources are found by wildcard: add a .c file to a module folder and it is built.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
BUILD ?= build
OPT ?= -O2 -g
EXTRA_CFLAGS ?=
EXTRA_LDFLAGS ?=

# libcurl is compiled against but loaded at run time (lib/curl_dl.c): it and
# its dependencies would otherwise cost half of every command's start-up.
PKGS := libcap libseccomp libarchive yajl libcrypto zlib libzstd libisal
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl)
PKG_LIBS := $(shell pkg-config --libs $(PKGS))

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wno-unused-parameter
CPPFLAGS_ALL := -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -I. $(PKG_CFLAGS)
CFLAGS_ALL := -std=gnu11 $(OPT) $(WARN) -pthread -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS_ALL := -pthread $(EXTRA_LDFLAGS)

MODULES := lib dockerfile runtime seccomp layers engine cmd
LIB_SRCS := $(filter-out cmd/main.c,$(wildcard $(addsuffix /*.c,$(MODULES))))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBKILN := $(BUILD)/libkiln.a
BIN := $(BUILD)/kiln
# V=1 shows the full commands
Q := $(if $(V),,@)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)

.PHONY: all kiln bench check check-unit check-integration asan check-asan fuzz install clean format deps demo

all: kiln

kiln: $(BIN)
	@ln -sf $(BIN) kiln

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(LIBKILN): $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(BUILD)/cmd/main.o $(LIBKILN)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBKILN) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h $(LIBKILN)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CPPFLAGS_ALL) -Itests/unit $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBKILN) $(PKG_LIBS)

# Small static programs the integration tests copy into images.
$(BUILD)/tests/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -static -Wall -o $@ $<

# Benchmarks: build/bench/bench_<name> (run by hand, see tests/bench/).
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: tests/bench/%.c $(LIBKILN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $< $(LIBKILN) $(PKG_LIBS)

bench: $(BENCH_BINS)

unit: $(UNIT_BINS)
helpers: $(HELPER_BINS)

# Every test: unit tests, then integration tests (as the current user, or as
# the test users when run by root; see tests/README.md).
check: kiln unit helpers
	@KILN_BUILD=$(BUILD) tests/run.sh

check-unit: unit
	@KILN_BUILD=$(BUILD) tests/run.sh --unit-only

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" kiln-asan

kiln-asan: $(BIN) unit helpers

check-asan: asan
	@KILN_BUILD=build-asan tests/run.sh

# libFuzzer targets (clang): build-fuzz/fuzz_<name>; see README "Development".
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION" \
		WARN="-Wall -Wextra -Werror -Wno-unused-parameter" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIBKILN)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBKILN) $(PKG_LIBS)

install: kiln
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/kiln
	@if [ -d doc/man ]; then install -d $(DESTDIR)$(PREFIX)/share/man/man1 && \
		install -m 0644 doc/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi
	@if [ -f completions/kiln.bash ]; then install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions && \
		install -m 0644 completions/kiln.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kiln; fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

deps:
	scripts/install-deps.sh

demo:
	scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz kiln

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
