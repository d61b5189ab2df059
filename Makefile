# goman - K3s clusters on AWS EC2 from the shell.
#   make            library (build/lib), commands (build/bin), goman.pc
#   make test       unit (cmocka) + integration (bats) tests; SAN=1 for ASan+UBSan
#   make bench      benchmarks, each printing ratios against a peer run in the same invocation
#   make demo       local AWS endpoint + a demo against it
#   make fuzz       libFuzzer targets (clang) into build-fuzz/, each run FUZZ_SECONDS (60)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       installs missing Debian packages (root) or prints the apt-get line
VERSION := $(shell cat VERSION)
PREFIX  ?= /usr/local
DESTDIR ?=

CC      ?= cc
SAN     ?=
ifeq ($(SAN),1)
BUILD   ?= build-san
# GCC's `undefined` leaves float-cast-overflow out: out-of-range double→int casts are UB too
SANFLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
OPT     := -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2 -g
endif

PKGS     := libcurl libcjson expat yaml-0.1 openssl
WARN     := -std=c11 -Wall -Wextra -Werror
CPPFLAGS += -D_GNU_SOURCE -DGOMAN_VERSION='"$(VERSION)"' -Ilibgoman/include -Ilibgoman
CFLAGS   ?= $(OPT)
CFLAGS   += $(WARN) $(SANFLAGS) -fPIC
LDLIBS   := -lcurl -lcjson -lexpat -lyaml -lssl -lcrypto -lm
LDFLAGS  += $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard libgoman/*.c))
LIB_OBJ  := $(LIB_SRC:libgoman/%.c=$(BUILD)/obj/%.o)
# unit-test build of the library: GOMAN_TESTABLE functions are visible
TLIB_OBJ := $(LIB_SRC:libgoman/%.c=$(BUILD)/tobj/%.o)
BIN_SRC  := $(sort $(wildcard bin/*.c))
BINS     := $(BIN_SRC:bin/%.c=$(BUILD)/bin/%)
# the commands' shared flag helpers (bin/cli), linked into every command, never into libgoman
CLI_SRC  := $(sort $(wildcard bin/cli/*.c))
CLI_OBJ  := $(CLI_SRC:bin/cli/%.c=$(BUILD)/cli/%.o)
.SECONDARY: $(CLI_OBJ)
# every command is linked a second time against libgoman.so: proves no command reaches
# past the exported (goman_*) interface
SO_BINS  := $(BIN_SRC:bin/%.c=$(BUILD)/bin-so/%)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC:= $(sort $(wildcard bench/*.c))
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# fuzz targets: libFuzzer builds (clang) and gcc-built replays of their corpora for `make test`
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
REPLAYS  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/fuzz/%)
HEADERS  := $(wildcard libgoman/include/goman/*.h) $(wildcard libgoman/*.h)

.PHONY: all lib bins bins-so check-structure units benches test unit bats bench demo install deps clean check-banned check-format fuzz fuzzers
all: lib bins $(BUILD)/goman.pc

lib: $(BUILD)/lib/libgoman.a $(BUILD)/lib/libgoman.so
bins: $(BINS)
bins-so: $(SO_BINS)
units: $(UNITS) $(REPLAYS) $(BUILD)/tests/iofault.so

$(BUILD)/obj/%.o: libgoman/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tobj/%.o: libgoman/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(CFLAGS) -c -o $@ $<

$(BUILD)/lib/libgoman.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libgoman.so: $(LIB_OBJ) libgoman/libgoman.map
	@mkdir -p $(@D)
	$(CC) -shared -Wl,--version-script=libgoman/libgoman.map -Wl,-soname,libgoman.so.0 \
		$(LDFLAGS) -o $@ $(LIB_OBJ) $(LDLIBS)
	ln -sf libgoman.so $(@D)/libgoman.so.0

$(BUILD)/tests/libgoman-test.a: $(TLIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cli/%.o: bin/cli/%.c $(wildcard bin/cli/*.h) $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/bin/%: bin/%.c $(CLI_OBJ) $(BUILD)/lib/libgoman.a $(HEADERS) $(wildcard bin/cli/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ibin/cli $(CFLAGS) -o $@ $< $(CLI_OBJ) $(BUILD)/lib/libgoman.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/bin-so/%: bin/%.c $(CLI_OBJ) $(BUILD)/lib/libgoman.so $(HEADERS) $(wildcard bin/cli/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ibin/cli $(CFLAGS) -o $@ $< $(CLI_OBJ) -L$(BUILD)/lib -lgoman \
		-Wl,-rpath,'$$ORIGIN/../lib' $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/tests/libgoman-test.a $(HEADERS) tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(CFLAGS) -Wno-unused-parameter -o $@ $< \
		$(BUILD)/tests/libgoman-test.a $(LDFLAGS) $(LDLIBS) -lcmocka

# LD_PRELOAD shim failing chosen writes/syncs/renames (tests/34-io-faults.bats); never
# sanitized: it is preloaded ahead of the sanitizer runtime
$(BUILD)/tests/iofault.so: tests/fixtures/iofault.c
	@mkdir -p $(@D)
	$(CC) -D_GNU_SOURCE $(WARN) -O2 -g -fPIC -shared -o $@ $< -ldl

# one replay binary per fuzz target: tests/fuzz/replay.c's main() feeds it files
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz.h \
		$(BUILD)/tests/libgoman-test.a $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(CFLAGS) -o $@ $< tests/fuzz/replay.c \
		$(BUILD)/tests/libgoman-test.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/goman.pc: goman.pc.in VERSION
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< >$@

# ---- tests --------------------------------------------------------------------------
test: deps all units check-banned check-format check-structure
	GOMAN_BUILD=$(BUILD) tests/run $(TESTS)

unit: all units
	GOMAN_BUILD=$(BUILD) tests/run --unit-only

bats: all $(BUILD)/tests/iofault.so
	GOMAN_BUILD=$(BUILD) tests/run --bats-only $(TESTS)

# every C file as .clang-format says (clang-format 14, from make deps)
C_FILES := $(wildcard libgoman/*.[ch] libgoman/include/goman/*.h bin/*.c bin/cli/*.[ch] tests/unit/*.[ch] \
	tests/fuzz/*.[ch] tests/fixtures/*.c bench/*.c)
check-format:
	@clang-format --dry-run --Werror $(C_FILES) || \
		{ echo "not formatted as .clang-format says: clang-format -i FILE"; exit 1; }

check-banned:
	@! grep -nE '\b(strcpy|sprintf|strtok|atoi|strcat|gets)\s*\(' libgoman/*.c bin/*.c bin/cli/*.c || \
		{ echo "banned function used (see above)"; exit 1; }
	@# a local struct goman_err starts defined (GOMAN_ERR_INIT), so no field can leak stack bytes
	@# (members of a struct definition, between "struct x {" and "};", are not locals)
	@! awk '/^(static )?struct [a-z_]+ \{/ { m = 1 } /^\};/ { m = 0 } \
		!m && /^[ \t]+struct goman_err [a-z_]+(, *[a-z_]+)*;/ { print FILENAME ":" FNR ": " $$0 }' \
		libgoman/*.c bin/*.c | grep . || \
		{ echo "struct goman_err declared without GOMAN_ERR_INIT (see above)"; exit 1; }

# the tree's shape, as the README's map promises it: no dependency circle among libgoman's
# object files, no function over 120 lines, no command reaching a private header, every
# command linked against libgoman.so too (the exported interface is enough)
check-structure: lib $(SO_BINS)
	@tests/checks/dep-circles $(BUILD)/obj
	@for b in $(SO_BINS); do $$b --version >/dev/null || { echo "$$b: does not run"; exit 1; }; done
	@tests/checks/long-functions 120 libgoman/*.c bin/*.c bin/cli/*.c
	@! grep -nE '^#include "(.*_int\.h|internal\.h)"' bin/*.c bin/cli/*.c || \
		{ echo "a command includes a private libgoman header (see above)"; exit 1; }

# ---- fuzzing (clang + libFuzzer) -----------------------------------------------------
# The library is built again with coverage instrumentation and the sanitizers, the
# GOMAN_TESTABLE internals visible; each target runs FUZZ_SECONDS and any crash, leak,
# timeout or sanitizer report fails the run (tests/fuzz/run-fuzz).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g $(WARN) $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(LIB_SRC:libgoman/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZERS      := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: libgoman/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libgoman-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libgoman-fuzz.a $(HEADERS)
	$(FUZZ_CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_BUILD)/libgoman-fuzz.a $(LDLIBS)

fuzzers: $(FUZZERS)

fuzz: $(FUZZERS)
	FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run-fuzz $(FUZZ_SECONDS) $(FUZZERS)

# ---- bench / demo -------------------------------------------------------------------
$(BUILD)/bench/%: bench/%.c $(BUILD)/tests/libgoman-test.a $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DGOMAN_UNIT_TEST $(CFLAGS) -o $@ $< $(BUILD)/tests/libgoman-test.a \
		$(LDFLAGS) $(LDLIBS)

benches: $(BENCHES)

bench: all benches
	GOMAN_BUILD=$(BUILD) bench/run $(BENCH)

demo: deps all
	GOMAN_BUILD=$(BUILD) scripts/demo.sh

# ---- install ------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/goman $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/libexec/goman \
		$(DESTDIR)$(PREFIX)/share/goman
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	if [ -f scripts/goman ]; then install -m 755 scripts/goman $(DESTDIR)$(PREFIX)/bin/; fi
	install -m 755 scripts/*.sh $(DESTDIR)$(PREFIX)/libexec/goman/
	install -m 755 scripts/k3s-install.sh $(DESTDIR)$(PREFIX)/share/goman/k3s-install.sh
	install -m 644 $(BUILD)/lib/libgoman.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/lib/libgoman.so $(DESTDIR)$(PREFIX)/lib/libgoman.so.0
	ln -sf libgoman.so.0 $(DESTDIR)$(PREFIX)/lib/libgoman.so
	install -m 644 libgoman/include/goman/*.h $(DESTDIR)$(PREFIX)/include/goman/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' goman.pc.in \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/goman.pc
	chmod 644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/goman.pc
	for s in 1 3 5 7; do for f in man/man$$s/*.$$s; do [ -f "$$f" ] && \
		install -m 644 "$$f" $(DESTDIR)$(PREFIX)/share/man/man$$s/; done; done; true
	for f in completions/*; do [ -f "$$f" ] && \
		install -m 644 "$$f" $(DESTDIR)$(PREFIX)/share/bash-completion/completions/; done; true

deps:
	@scripts/deps.sh

clean:
	rm -rf build build-san build-fuzz
