# The CUDA backend: `make CUDA=1` compiles src/backend/cuda/*.cu with nvcc
# for sm_90a (H100 / H200), links the CUDA runtime statically and defines
# ZT_HAVE_CUDA. `make test-cuda` builds and runs the CUDA tests
# (tests/cuda: layouts on the CPU, then every kernel family and the whole
# forward pass against the CPU backend on the GPU). `make bench-cuda`
# builds bench/cuda/bench_cuda. Needs nvcc (CUDA 12.4+; 13.0 here).
#
# The CPU-only layout tests (tests/cuda/test_cuda_units.c) need no GPU and
# no nvcc: `make test-cuda-units`.

NVCC       ?= nvcc
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
CUDA_GENCODE ?= -gencode=arch=compute_90a,code=sm_90a
NVCCFLAGS  ?= -std=c++17 -O3 $(CUDA_GENCODE) -Iinclude -Isrc \
              -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Werror
CUDA_DIR   := src/backend/cuda
CUDA_CU    := $(sort $(wildcard $(CUDA_DIR)/*.cu))
CUDA_C     := $(sort $(wildcard $(CUDA_DIR)/*.c))
CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lpthread -lstdc++

CUDA_UNIT_SRC := tests/unit/main.c tests/cuda/test_cuda_units.c $(CUDA_DIR)/repack.c
test-cuda-units: $(BUILD)/libzt.a
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -o $(BUILD)/zt-cuda-units $(CUDA_UNIT_SRC) $(BUILD)/libzt.a $(LDFLAGS) $(LDLIBS)
	$(BUILD)/zt-cuda-units

ifeq ($(CUDA),1)
CFLAGS += -DZT_HAVE_CUDA
LDLIBS += $(CUDA_LIBS)
CUDA_OBJ := $(CUDA_CU:%.cu=$(BUILD)/%.o) $(CUDA_C:%.c=$(BUILD)/%.o)
$(BUILD)/libzt.a: $(CUDA_OBJ)

$(BUILD)/$(CUDA_DIR)/%.o: $(CUDA_DIR)/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

CUDA_TEST_SRC := $(sort $(wildcard tests/cuda/*.c))
CUDA_TEST_OBJ := $(CUDA_TEST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/unit/main.o
-include $(CUDA_OBJ:.o=.d) $(CUDA_TEST_OBJ:.o=.d)

$(BUILD)/zt-cuda-tests: $(CUDA_TEST_OBJ) $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_cuda: CFLAGS += -I$(CUDA_HOME)/include
$(BUILD)/bench_cuda: bench/cuda/bench_cuda.c $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

test-cuda: $(BUILD)/zt-cuda-tests
	$(BUILD)/zt-cuda-tests

bench-cuda: $(BUILD)/bench_cuda
else
test-cuda bench-cuda:
	$(MAKE) CUDA=1 BUILD=$(BUILD)-cuda $@
endif

.PHONY: test-cuda test-cuda-units bench-cuda
