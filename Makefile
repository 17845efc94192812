# distilbert.c — build, test, demo, bench, install.
#
#   make              library (static + shared) and the `distilbert` CLI in build/
#   make test         unit tests (cmocka) and oracle tests (pytest vs transformers/tokenizers)
#   make test-asan    the same suite built with AddressSanitizer + UBSan (in build-asan/)
#   make demo         the main job
#   make bench        benchmarks against the peers, measured in the same run
#   make install PREFIX=/usr/local
#
# Missing system packages or the oracle venv are installed by scripts/install-deps.sh.

comma := ,
PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
PYTHON := .venv/bin/python

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -fPIC -pthread $(WARN)
OPT_CFLAGS ?= -O2 -g
ifeq ($(BUILD),build-asan)
  OPT_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
ifeq ($(BUILD),build-fuzz)
  CC := clang
  OPT_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
endif
CFLAGS_ALL := $(BASE_CFLAGS) $(OPT_CFLAGS) $(CFLAGS)
LIBS := -lz -lutf8proc -lcjson -lmicrohttpd -lm -pthread
# Data-parallel training over MPI (src/training/dist.c, the only file that includes <mpi.h>):
# MPI=auto (default) uses Open MPI when pkg-config finds ompi-c (libopenmpi-dev; else an mpicc
# that tells its flags), MPI=1 requires it, MPI=0 builds the single-process version (one rank;
# under `mpirun -np N` it refuses to start).
MPI ?= auto
ifneq ($(MPI),0)
  MPI_FOUND := $(shell pkg-config --exists ompi-c 2>/dev/null && echo pc || \
                 { mpicc --showme:compile >/dev/null 2>&1 && echo mpicc; })
  ifeq ($(MPI_FOUND),pc)
    MPI_CFLAGS := -DDBT_WITH_MPI $(shell pkg-config --cflags ompi-c)
    MPI_LIBS := $(shell pkg-config --libs ompi-c)
  else ifeq ($(MPI_FOUND),mpicc)
    MPI_CFLAGS := -DDBT_WITH_MPI $(shell mpicc --showme:compile)
    MPI_LIBS := $(shell mpicc --showme:link)
  else ifeq ($(MPI),1)
    $(error MPI=1 but neither pkg-config (ompi-c) nor mpicc finds MPI: apt-get install libopenmpi-dev)
  endif
endif
LIBS += $(MPI_LIBS)
# The choice is recorded so that changing it (MPI=0, or libopenmpi-dev installed after a first
# build: the first `make` on a bare machine decides before install-deps.sh runs) rebuilds
# dist.o and relinks.
MPI_STAMP := $(BUILD)/mpi-flags.txt
$(shell mkdir -p $(BUILD) && { echo '$(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $(MPI_STAMP) || echo '$(MPI_CFLAGS) $(MPI_LIBS)' > $(MPI_STAMP); })
LDFLAGS_ALL := $(if $(filter build-asan,$(BUILD)),-fsanitize=address$(comma)undefined) $(LDFLAGS)

LIB_SRC := $(wildcard src/common/*.c src/tokenizer/*.c src/kernels/*.c src/model/*.c src/tasks/*.c src/training/*.c)
CLI_SRC := $(wildcard src/cli/*.c src/server/*.c)
TEST_SRC := $(wildcard tests/unit/test_*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_NAMES := tokenizer safetensors config tokenizer_json request
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/fuzz_%)

STATIC_LIB := $(BUILD)/libdistilbert.a
SHARED_LIB := $(BUILD)/libdistilbert.so
# The ABI's major version: programs linked against the library record this name, and install
# keeps libdistilbert.so (the link-time name) as a link to it.
SONAME := libdistilbert.so.0
CLI := $(BUILD)/distilbert
DEPS_STAMP := .deps-system.ok

.DEFAULT_GOAL := all
.PHONY: all test test-unit test-oracle test-asan demo bench install clean deps oracle fuzz fuzz-build
all: $(STATIC_LIB) $(SHARED_LIB) $(CLI)

$(BUILD)/obj/src/training/dist.o: CFLAGS_ALL += $(MPI_CFLAGS)
$(BUILD)/obj/src/training/dist.o: $(MPI_STAMP)

# System packages (headers and libraries) must be there before anything compiles.
$(DEPS_STAMP): scripts/install-deps.sh
	scripts/install-deps.sh --system
	touch $@
deps: $(DEPS_STAMP)
oracle: $(DEPS_STAMP)
	scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(STATIC_LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJ) $(MPI_STAMP)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $(LIB_OBJ) $(LDFLAGS_ALL) $(LIBS)

$(CLI): $(CLI_OBJ) $(STATIC_LIB) $(MPI_STAMP)
	$(CC) -o $@ $(CLI_OBJ) $(STATIC_LIB) $(LDFLAGS_ALL) $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(STATIC_LIB) $(LDFLAGS_ALL) $(LIBS) -lcmocka

# Small programs the pytest suites drive (they sit next to the CLI: $(BUILD)/tools/).
$(BUILD)/tools/%: tests/tools/%.c $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(STATIC_LIB) $(LDFLAGS_ALL) $(LIBS)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- tests ------------------------------------------------------------------------------
test: oracle all $(TEST_BIN) $(TOOL_BIN)
	$(MAKE) --no-print-directory test-unit test-oracle BUILD=$(BUILD)

test-unit: $(TEST_BIN) $(TOOL_BIN) $(REPLAY_BIN)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; $$t; done
	@set -e; for n in $(FUZZ_NAMES); do $(BUILD)/fuzz-replay/fuzz_$$n fuzz/regressions/$$n fuzz/corpus/$$n; done

test-oracle: $(CLI) $(TOOL_BIN)
	DBT_BIN=$(abspath $(CLI)) $(PYTHON) -m pytest -q tests $(PYTEST_ARGS)

test-asan: oracle
	$(MAKE) --no-print-directory BUILD=build-asan all
	$(MAKE) --no-print-directory BUILD=build-asan test-unit test-oracle \
	  PYTEST_ARGS="$(PYTEST_ARGS) -m 'not slow'"

# ---- fuzzing: libFuzzer harnesses (fuzz/), clang -fsanitize=fuzzer,address,undefined -----------
# `make fuzz` runs each harness FUZZ_SECONDS from its seeds (fuzz/corpus/<name>/, plus the crash
# inputs kept in fuzz/regressions/<name>/); new corpus entries and crashes go to build-fuzz/.
# `make test` replays the seeds and regressions without libFuzzer (fuzz/replay_main.c).
FUZZ_SECONDS ?= 30
FUZZ_OBJ = $(BUILD)/obj/src/server/request.o

$(BUILD)/fuzz-replay/fuzz_%: fuzz/fuzz_%.c fuzz/replay_main.c fuzz/fuzz_util.h $(FUZZ_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< fuzz/replay_main.c $(FUZZ_OBJ) $(STATIC_LIB) $(LDFLAGS_ALL) $(LIBS)

build-fuzz/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_OBJ) $(STATIC_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJ) $(STATIC_LIB) $(LIBS)

fuzz-build: $(FUZZ_NAMES:%=build-fuzz/fuzz/fuzz_%) # with BUILD=build-fuzz

fuzz: $(DEPS_STAMP)
	$(MAKE) --no-print-directory BUILD=build-fuzz fuzz-build
	@set -e; mkdir -p build-fuzz/artifacts; for n in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$n; reg=; [ -d fuzz/regressions/$$n ] && reg=fuzz/regressions/$$n; \
	  build-fuzz/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/artifacts/$$n- build-fuzz/corpus/$$n fuzz/corpus/$$n $$reg \
	    > build-fuzz/fuzz_$$n.log 2>&1 || { tail -60 build-fuzz/fuzz_$$n.log; \
	    echo "fuzz_$$n: crash; the input is in build-fuzz/artifacts/ (add it to fuzz/regressions/$$n/)"; exit 1; }; \
	  printf "fuzz_%-15s %10s runs  %6s corpus entries  cov %s\n" $$n \
	    "$$(sed -n 's/^stat::number_of_executed_units: *//p' build-fuzz/fuzz_$$n.log)" \
	    "$$(find build-fuzz/corpus/$$n fuzz/corpus/$$n -type f | wc -l)" \
	    "$$(grep -o 'cov: [0-9]*' build-fuzz/fuzz_$$n.log | tail -1 | cut -d' ' -f2)"; \
	done

# ---- the main job and benchmarks --------------------------------------------------------
demo: oracle all
	scripts/demo.sh $(BUILD) $(DEMO_ARGS)

bench: oracle all
	$(MAKE) --no-print-directory -C bench BUILD=$(abspath $(BUILD))

# ---- install ----------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/distilbert
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libdistilbert.so
	install -m 644 include/distilbert.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|'$$(sed -n 's/#define DBT_VERSION "\(.*\)"/\1/p' include/distilbert.h)'|' \
	  -e 's|@MPI_LIBS@|$(MPI_LIBS)|' distilbert.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/distilbert.pc

clean:
	rm -rf build build-asan build-fuzz
