# bookd — `make run` to try it, `make test` to check it, `make bench` to measure it.

CC      ?= cc
# Where objects and binaries go: `make B=build-x` keeps a second tree apart.
B       ?= build
PKGS    := libmicrohttpd jansson sqlite3 libcmark-gfm libsodium libcrypto libcurl libutf8proc libzip libpq espeak-ng
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -fno-strict-aliasing $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcmark-gfm-extensions -lmp3lame -lpthread -lm

SRC     := $(shell find src -name '*.c' | sort)
LIB_SRC := $(filter-out src/main.c,$(SRC))
OBJ     := $(SRC:src/%.c=$(B)/obj/%.o)
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/obj/%.o)
ASAN_OBJ := $(SRC:src/%.c=$(B)/asan/obj/%.o)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

# The API tests spend most of their time waiting (jobs, backoff, timeouts):
# three pytest workers cut the wall time by more than half on two cores.
PYTEST_JOBS ?= 3
PYTEST  := /usr/bin/python3 -m pytest -p no:cacheprovider -n $(PYTEST_JOBS)

.PHONY: all deps run test unit unit-asan api api-pg api-asan fuzz fuzz-bins bench clean format check-banned

all: $(B)/bookd

deps:
	@sh scripts/deps.sh

$(B)/bookd: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The vector scan is the one hot loop worth vectorising for the build machine.
$(B)/obj/services/vindex.o: CFLAGS += -O3 -march=native

$(B)/asan/bookd: $(ASAN_OBJ)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/asan/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d)

run: deps $(B)/bookd
	@sh scripts/run.sh

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

# The unit tests against the sanitized objects (leaks included): the
# allocation-failure test (test_alloc) is worth most here.
ASAN_LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/asan/obj/%.o)
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)
$(B)/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -Isrc -o $@ $< $(ASAN_LIB_OBJ) $(LDLIBS) -lcmocka

unit-asan: $(ASAN_UNIT_BIN)
	@fail=0; for t in $(ASAN_UNIT_BIN); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $$t || fail=1; done; exit $$fail

api: $(B)/bookd
	BOOKD_BIN=$(CURDIR)/$(B)/bookd $(PYTEST) -q tests/api

# The same suite on a private PostgreSQL 15 that the tests start and remove.
api-pg: $(B)/bookd
	BOOKD_TEST_DB=postgres BOOKD_BIN=$(CURDIR)/$(B)/bookd $(PYTEST) -q tests/api

api-asan: $(B)/asan/bookd
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	BOOKD_BIN=$(CURDIR)/$(B)/asan/bookd BOOKD_SANITIZED=1 $(PYTEST) -q tests/api

# libFuzzer targets (clang): every parser that sees untrusted input. `make fuzz`
# runs each for FUZZ_SECONDS (default 10; part of `make test` at 5).
FUZZ_SECONDS ?= 10
FUZZ_SRC := $(filter-out src/main.c,$(SRC))
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# The sources are instrumented once into objects that every target links.
FUZZ_OBJ := $(FUZZ_SRC:src/%.c=$(B)/fuzz/obj/%.o)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
$(B)/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_FLAGS)) -MMD -MP -c -o $@ $<
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(FUZZ_OBJ) $(LDLIBS)
-include $(FUZZ_OBJ:.o=.d)

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-bins
	@mkdir -p $(B)/fuzz/corpus-md $(B)/fuzz/corpus-in
	$(B)/fuzz/fuzz_markdown -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(B)/fuzz/corpus-md tests/fuzz/corpus tests/fuzz/regressions
	$(B)/fuzz/fuzz_inputs -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(B)/fuzz/corpus-in tests/fuzz/corpus
	@mkdir -p $(B)/fuzz/corpus-cit
	$(B)/fuzz/fuzz_citations -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(B)/fuzz/corpus-cit tests/fuzz/corpus-cit
	@mkdir -p $(B)/fuzz/corpus-auth
	$(B)/fuzz/fuzz_auth -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(B)/fuzz/corpus-auth tests/fuzz/corpus-auth
	@mkdir -p $(B)/fuzz/corpus-sse $(B)/fuzz/corpus-env
	$(B)/fuzz/fuzz_llm_stream -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(B)/fuzz/corpus-sse tests/fuzz/corpus-sse
	$(B)/fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(B)/fuzz/corpus-env tests/fuzz/corpus-env
	@mkdir -p $(B)/fuzz/corpus-mp3-run
	$(B)/fuzz/fuzz_mp3 -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(B)/fuzz/corpus-mp3-run tests/fuzz/corpus-mp3
	@mkdir -p $(B)/fuzz/corpus-mdp
	$(B)/fuzz/fuzz_mdprotect -max_total_time=$(FUZZ_SECONDS) -max_len=16384 $(B)/fuzz/corpus-mdp tests/fuzz/corpus-mdp tests/fuzz/corpus

check-banned:
	@! grep -nE '\b(sprintf|strcpy|strcat|atoi|atol|gets)\s*\(' $(SRC) || \
	  (echo "banned function used (see STYLE.md)"; exit 1)

# Builds use every core; the suites run one after another (each is parallel).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) check-banned $(B)/bookd $(B)/asan/bookd $(UNIT_BIN) fuzz-bins
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5
	@$(MAKE) --no-print-directory api
	@$(MAKE) --no-print-directory api-pg
	@$(MAKE) --no-print-directory api-asan

bench: deps $(B)/bookd
	@sh bench/run.sh

format:
	clang-format -i $(SRC) $(shell find src -name '*.h')

clean:
	rm -rf $(B)
