# certkeep — GNU make with pkg-config.
#   make                 build/certkeep
#   make SANITIZE=1      build/asan/certkeep (AddressSanitizer + UndefinedBehaviorSanitizer)
#   make tests           build the cmocka unit tests; make unit also runs them
#   make check           the whole test suite (unit, sanitizer unit, integration); see tests/run.sh

PKGS     := openssl libcurl jansson sqlite3 libevent libevent_openssl libevent_pthreads libidn2 ldns libsodium nettle
CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c17 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -Wall -Wextra -Werror \
            -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
            -fno-strict-aliasing -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread

# The daemon links jemalloc: OpenSSL 3.0 makes hundreds of small allocations per TLS handshake,
# and with 100,000 certificates loaded glibc's malloc took 17% of the edge's CPU and kept the
# start's garbage resident (bench/edge/README.md). The sanitizer build keeps ASan's allocator;
# unit tests and fuzz targets keep glibc's.
ifeq ($(SANITIZE),1)
BUILD    ?= build/asan
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
DAEMON_LIBS :=
else
BUILD    ?= build
DAEMON_LIBS := $(shell pkg-config --libs jemalloc)
endif

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/main.c,$(SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) \
               -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer

.PHONY: all tests unit check clean format fuzz
all: $(BUILD)/certkeep

$(BUILD)/certkeep: $(MAIN_OBJ) $(BUILD)/libcertkeep.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DAEMON_LIBS)

$(BUILD)/libcertkeep.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcertkeep.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -Itests/unit -o $@ $< $(BUILD)/libcertkeep.a \
	    $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs cmocka)

# The allocator-arena test needs the daemon's allocator (nothing in the sanitizer build).
$(BUILD)/tests/test_alloc_arena: LDLIBS += $(DAEMON_LIBS)
$(BUILD)/tests/test_alloc_arena_routed: LDLIBS += $(DAEMON_LIBS)

tests: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

# libFuzzer targets, one per parser of outside input; tests/fuzz/run.sh runs them for a bounded time.
fuzz: $(FUZZ_BIN)

build/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

check:
	@tests/run.sh

format:
	clang-format -i $(SRC) $(shell find src -name '*.h') $(UNIT_SRC)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
