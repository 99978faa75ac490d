# zt — build with `make`; test with `make test`.
# The CPU path needs only a C11 compiler, pthreads and libm.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
ARCHFLAGS ?= -march=native
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCHFLAGS) -g -Wall -Wextra -Werror \
           -Wno-unused-parameter -fno-strict-aliasing -Iinclude -Isrc
LDLIBS  += -lpthread -lm

# Sources: everything under src/ but the GPU and browser backends, which
# are opt-in (mk/*.mk).
LIB_SRC := $(filter-out src/cli/% src/backend/cuda/% src/backend/vulkan/% src/backend/webgpu/% src/wasm/%, \
             $(shell find src -name '*.c' | sort))
CLI_SRC := $(shell find src/cli -name '*.c' | sort)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests/unit -name '*.c' | sort)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

all: zt

zt: $(BUILD)/zt
	@ln -sf $(BUILD)/zt zt

$(BUILD)/libzt.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/zt: $(CLI_OBJ) $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/zt-tests: $(TEST_OBJ) $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

lib: $(BUILD)/libzt.a

# Build, then run the shipped demo model: a completion and a two-turn chat.
demo:
	@scripts/demo.sh

# The whole suite: unit tests, then the end-to-end and reference checks.
test: $(BUILD)/zt $(BUILD)/zt-tests
	@tests/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) zt

.PHONY: all zt lib test clean demo

# Optional parts (GPU backends, wasm, fuzzing, sanitizers) bring their own
# targets in mk/*.mk.
-include $(sort $(wildcard mk/*.mk))
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
