# The Vulkan backend: `make VULKAN=1` compiles the shaders under
# src/backend/vulkan/shaders with glslc (two builds of each, see
# shaders/common.glsl), embeds the SPIR-V (shaders.c includes the .inc
# initializers written here), builds the backend with -DZT_HAVE_VULKAN and
# links the Vulkan loader. `make test-vulkan` builds and runs the Vulkan
# tests (tests/vulkan) with the Khronos validation layer enabled.
# Needs: glslc, libvulkan-dev; to run on a CPU: mesa-vulkan-drivers
# (lavapipe); for the tests: vulkan-validationlayers.

GLSLC ?= glslc
VK_DIR := src/backend/vulkan
VK_SHADER_SRC := $(wildcard $(VK_DIR)/shaders/*.comp $(VK_DIR)/shaders/*.glsl)
VK_SPV := $(BUILD)/vk-spv
# NAME.VARIANT: shaders/NAME.comp with ZT_FAST=1 (fast) or 0 (portable),
# for the KV-cache shaders KV_F16 / KV_F32 / KV_Q8, and ZT_TIMELINE=1 for
# the decode timeline's builds (tl; shaders/timeline.glsl), ATT_WO=1 for
# the attention with the output projection fused (wo; fast only: it needs
# float atomics).
VK_VARIANTS := embed.portable attention_merge.portable \
  $(foreach v,fast portable,matmul.$(v) ffn.$(v) lm_head.$(v) kv_quant.$(v) sample.$(v) \
    qkv.f16.$(v) qkv.f32.$(v) attention.f16.$(v) attention.f32.$(v) attention.q8.$(v)) \
  matmul.tl.fast ffn.tl.fast qkv.f16.tl.fast attention.f16.tl.fast attention.f16.wo.fast \
  attention.f16.wo.tl.fast attention_merge.wo.fast
VK_INC := $(VK_VARIANTS:%=$(VK_SPV)/%.inc)

vk_name = $(firstword $(subst ., ,$(1)))
vk_defs = -DZT_FAST=$(if $(filter fast,$(subst ., ,$(1))),1,0) \
  $(if $(filter f16,$(subst ., ,$(1))),-DKV_F16=1) \
  $(if $(filter f32,$(subst ., ,$(1))),-DKV_F32=1) \
  $(if $(filter q8,$(subst ., ,$(1))),-DKV_Q8=1) \
  $(if $(filter tl,$(subst ., ,$(1))),-DZT_TIMELINE=1) \
  $(if $(filter wo,$(subst ., ,$(1))),-DATT_WO=1)

$(VK_SPV)/%.inc: $(VK_SHADER_SRC)
	@mkdir -p $(dir $@)
	$(GLSLC) --target-env=vulkan1.2 -O $(call vk_defs,$*) -mfmt=c \
	  -o $@ $(VK_DIR)/shaders/$(call vk_name,$*).comp

ifeq ($(VULKAN),1)
CFLAGS += -DZT_HAVE_VULKAN
LDLIBS += -lvulkan
VK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard $(VK_DIR)/*.c)))
$(BUILD)/libzt.a: $(VK_OBJ)
$(BUILD)/$(VK_DIR)/shaders.o: $(VK_INC)
$(BUILD)/$(VK_DIR)/shaders.o: CFLAGS += -I$(VK_SPV)

VK_TEST_SRC := $(sort $(wildcard tests/vulkan/*.c))
VK_TEST_OBJ := $(VK_TEST_SRC:%.c=$(BUILD)/%.o)
-include $(VK_OBJ:.o=.d) $(VK_TEST_OBJ:.o=.d)

$(BUILD)/zt-vulkan-tests: $(VK_TEST_OBJ) $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# bench/vulkan/sync_bench.c: what a dependency between dispatches costs
# (barrier, overlap, chained, grid barrier); `make bench-vulkan`.
$(VK_SPV)/bench_sync.inc: bench/vulkan/sync.comp
	@mkdir -p $(dir $@)
	$(GLSLC) --target-env=vulkan1.2 -O -mfmt=c -o $@ $<
$(BUILD)/bench/vulkan/sync_bench.o: $(VK_SPV)/bench_sync.inc
$(BUILD)/bench/vulkan/sync_bench.o: CFLAGS += -I$(VK_SPV)
$(BUILD)/bench_vk_sync: $(BUILD)/bench/vulkan/sync_bench.o $(BUILD)/libzt.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)
bench-vulkan: $(BUILD)/bench_vk_sync

# The Vulkan tests under the Khronos validation layer; any validation
# warning or error fails them.
test-vulkan: $(BUILD)/zt $(BUILD)/zt-vulkan-tests
	VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation $(BUILD)/zt-vulkan-tests
else
test-vulkan bench-vulkan:
	$(MAKE) VULKAN=1 BUILD=$(BUILD)-vulkan $@
endif

.PHONY: test-vulkan bench-vulkan
