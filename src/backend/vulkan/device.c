/*
 * The Vulkan device layer: instance (with a VK_EXT_debug_utils messenger
 * that counts validation warnings and errors), the choice of device and of
 * shader build, buffers and their memory, cached pipelines and descriptor
 * sets, and one-shot submissions.
 *
 * Why one descriptor set layout for everything: every shader binds only
 * storage buffers, at most VK_BINDINGS of them, so one layout and one
 * pipeline layout serve all pipelines, and a dispatch is (pipeline, set,
 * groups, push constants) — the forward pass is a flat list of those.
 * Descriptor sets are created once per distinct list of buffers and reused
 * by every recording.
 */
#include "backend/vulkan/vk.h"
#include "util/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vk_pipe_entry {
    int shader;
    uint32_t spec[VK_SPEC];
    VkPipeline pipe;
    uint32_t regs; /* registers a thread, as the driver reports them; 0: unknown */
};

struct vk_set_entry {
    VkBuffer bufs[VK_BINDINGS];
    VkDescriptorSet set;
};

#define VK_SETS_PER_POOL 256
#define VK_STAGING_BYTES (32u << 20)

static atomic_int validation_count;

int vk_validation_messages(void) { return atomic_load(&validation_count); }

static VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(
    VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    /* The loader's own general warnings (such as "env var VK_INSTANCE_LAYERS
     * defined") are not validation results. */
    bool loader_note = type == VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT &&
                       !(severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT);
    if (!loader_note && severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                    VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        atomic_fetch_add(&validation_count, 1);
        fprintf(stderr, "zt vulkan: %s: %s\n",
                severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
                data && data->pMessage ? data->pMessage : "(no message)");
    }
    return VK_FALSE;
}

static const char *vk_result_name(VkResult r) {
    switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return "out of host memory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        return "out of device memory";
    case VK_ERROR_INITIALIZATION_FAILED:
        return "initialization failed";
    case VK_ERROR_DEVICE_LOST:
        return "device lost";
    case VK_ERROR_LAYER_NOT_PRESENT:
        return "layer not present";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
        return "extension not present";
    case VK_ERROR_FEATURE_NOT_PRESENT:
        return "feature not present";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
        return "incompatible driver (no Vulkan 1.2 device)";
    case VK_ERROR_TOO_MANY_OBJECTS:
        return "too many objects";
    case VK_ERROR_FRAGMENTED_POOL:
        return "fragmented pool";
    case VK_ERROR_OUT_OF_POOL_MEMORY:
        return "out of pool memory";
    default:
        return "error";
    }
}

int vk_check(VkResult r, zt_error *err, const char *what) {
    if (r == VK_SUCCESS) return ZT_OK;
    int code = r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? ZT_ENOMEM
                                                                                      : ZT_EBACKEND;
    return zt_fail(err, code, "vulkan: %s failed: %s (VkResult %d)", what, vk_result_name(r), r);
}

/* ---- instance and device --------------------------------------------------- */

static bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(exts[i].extensionName, name)) return true;
    return false;
}

static int create_instance(vk_ctx *c, zt_error *err) {
    uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *exts = calloc(n ? n : 1, sizeof *exts);
    if (!exts) return zt_fail(err, ZT_ENOMEM, "out of memory");
    vkEnumerateInstanceExtensionProperties(NULL, &n, exts);
    bool debug = has_extension(exts, n, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    free(exts);

    const char *ext_names[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "zt",
                             .pEngineName = "zt",
                             .apiVersion = VK_API_VERSION_1_2};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_debug_message};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = debug ? &dbg : NULL, /* also covers create/destroy */
                               .pApplicationInfo = &app,
                               .enabledExtensionCount = debug ? 1 : 0,
                               .ppEnabledExtensionNames = ext_names};
    VkResult r = vkCreateInstance(&ci, NULL, &c->instance);
    if (r != VK_SUCCESS) {
        c->instance = VK_NULL_HANDLE;
        return vk_check(r, err, "vkCreateInstance (is a Vulkan loader and driver installed?)");
    }
    if (debug) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                c->instance, "vkCreateDebugUtilsMessengerEXT");
        if (create) create(c->instance, &dbg, NULL, &c->messenger);
    }
    return ZT_OK;
}

static int device_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 1;
    default:
        return 0;
    }
}

static int pick_device(vk_ctx *c, zt_error *err) {
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(c->instance, &n, NULL);
    if (n == 0) return zt_fail(err, ZT_EBACKEND, "vulkan: no Vulkan device found");
    VkPhysicalDevice *devs = calloc(n, sizeof *devs);
    if (!devs) return zt_fail(err, ZT_ENOMEM, "out of memory");
    vkEnumeratePhysicalDevices(c->instance, &n, devs);
    const char *want = getenv("ZT_VK_DEVICE");
    int best = -1, best_rank = -1;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devs[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_2) continue;
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(devs[i], &nq, NULL);
        VkQueueFamilyProperties qf[16];
        if (nq > 16) nq = 16;
        vkGetPhysicalDeviceQueueFamilyProperties(devs[i], &nq, qf);
        bool compute = false;
        for (uint32_t q = 0; q < nq; q++) compute |= (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
        if (!compute) continue;
        int rank = device_rank(p.deviceType);
        if (want && *want) rank = atoi(want) == (int)i ? 100 : -1;
        if (rank > best_rank) best = (int)i, best_rank = rank;
    }
    if (best >= 0) c->phys = devs[best];
    free(devs);
    if (best < 0)
        return zt_fail(err, ZT_EBACKEND, "vulkan: no Vulkan 1.2 device with a compute queue%s",
                       want ? " (ZT_VK_DEVICE names none)" : "");
    return ZT_OK;
}

static int create_device(vk_ctx *c, bool portable, zt_error *err) {
    vkGetPhysicalDeviceProperties(c->phys, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->mem_props);
    c->max_range = c->props.limits.maxStorageBufferRange;

    uint32_t n_ext = 0;
    vkEnumerateDeviceExtensionProperties(c->phys, NULL, &n_ext, NULL);
    VkExtensionProperties *exts = calloc(n_ext ? n_ext : 1, sizeof *exts);
    if (!exts) return zt_fail(err, ZT_ENOMEM, "out of memory");
    vkEnumerateDeviceExtensionProperties(c->phys, NULL, &n_ext, exts);
    bool has_dot = has_extension(exts, n_ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    bool has_size_ctl = has_extension(exts, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    bool has_clock = has_extension(exts, n_ext, VK_KHR_SHADER_CLOCK_EXTENSION_NAME);
    bool has_stats =
        has_extension(exts, n_ext, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    bool has_sm = has_extension(exts, n_ext, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
    bool has_atomic = has_extension(exts, n_ext, VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME);
    free(exts);

    /* properties: subgroups, allocation size, subgroup size range, SMs;
     * the extensions' structures chained only where the device has them */
    VkPhysicalDeviceShaderSMBuiltinsPropertiesNV sm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV};
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT size_ctl = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    void *chain = NULL;
    if (has_sm) sm.pNext = chain, chain = &sm;
    if (has_size_ctl) size_ctl.pNext = chain, chain = &size_ctl;
    VkPhysicalDeviceMaintenance3Properties maint3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = chain};
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &maint3};
    VkPhysicalDeviceProperties2 props2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &sg};
    vkGetPhysicalDeviceProperties2(c->phys, &props2);
    c->max_alloc = maint3.maxMemoryAllocationSize;
    c->subgroup_min =
        has_size_ctl && size_ctl.minSubgroupSize ? size_ctl.minSubgroupSize : sg.subgroupSize;
    if (c->subgroup_min == 0) c->subgroup_min = 1;
    bool one_size = !has_size_ctl || size_ctl.minSubgroupSize == size_ctl.maxSubgroupSize;
    c->subgroup_fixed = one_size ? sg.subgroupSize : 0;
    c->sm_count = has_sm ? sm.shaderSMCount : 0;

    /* features, chained the same way */
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR stats = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    VkPhysicalDeviceShaderClockFeaturesKHR clock = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CLOCK_FEATURES_KHR};
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR dot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR};
    VkPhysicalDeviceShaderAtomicFloatFeaturesEXT atomic = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT};
    chain = NULL;
    if (has_atomic) atomic.pNext = chain, chain = &atomic;
    if (has_stats) stats.pNext = chain, chain = &stats;
    if (has_clock) clock.pNext = chain, chain = &clock;
    if (has_dot) dot.pNext = chain, chain = &dot;
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = chain};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(c->phys, &feats);
    const char *env = getenv("ZT_VK_PORTABLE");
    if (env && *env && strcmp(env, "0") != 0) portable = true;
    VkSubgroupFeatureFlags need_ops = VK_SUBGROUP_FEATURE_BASIC_BIT |
                                      VK_SUBGROUP_FEATURE_ARITHMETIC_BIT |
                                      VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
    c->fast = !portable && (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
              (sg.supportedOperations & need_ops) == need_ops && f11.storageBuffer16BitAccess &&
              has_dot && dot.shaderIntegerDotProduct;
    /* float atomic add: the attention with Wo fused (vk_fuse_wo) */
    c->atomic_add = c->fast && has_atomic && atomic.shaderBufferFloat32AtomicAdd;
    /* the decode timeline (timeline.c): the fast build's device with a
     * device-wide shader clock, on request only */
    const char *tl = getenv("ZT_VK_TIMELINE");
    c->timeline =
        tl && *tl && strcmp(tl, "0") != 0 && c->fast && has_clock && clock.shaderDeviceClock;
    /* each pipeline's compiled statistics (registers, ...) on stderr, on
     * request only (ZT_VK_STATS=1; vk_pipeline prints them) */
    const char *st = getenv("ZT_VK_STATS");
    c->stats = st && *st && strcmp(st, "0") != 0 && has_stats && stats.pipelineExecutableInfo;
    /* and, where the grid is sized to the multiprocessors, always: the
     * register count sets how many workgroups an SM holds (kernels.c) */
    c->exec_stats = c->stats || (has_stats && stats.pipelineExecutableInfo && c->sm_count > 0);

    /* the largest device-local heap */
    for (uint32_t i = 0; i < c->mem_props.memoryHeapCount; i++)
        if (c->mem_props.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT &&
            c->mem_props.memoryHeaps[i].size > c->heap_bytes)
            c->heap_bytes = c->mem_props.memoryHeaps[i].size;

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(c->phys, &nq, qf);
    c->queue_family = UINT32_MAX;
    for (uint32_t q = 0; q < nq && c->queue_family == UINT32_MAX; q++) /* compute-only first */
        if ((qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            !(qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            c->queue_family = q;
    for (uint32_t q = 0; q < nq && c->queue_family == UINT32_MAX; q++)
        if (qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) c->queue_family = q;

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = c->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    /* the features and extensions used: a chain built from the end */
    const char *dev_exts[4];
    uint32_t n_dev_exts = 0;
    chain = NULL;
    VkPhysicalDeviceShaderAtomicFloatFeaturesEXT atomic_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT,
        .shaderBufferFloat32AtomicAdd = VK_TRUE};
    if (c->atomic_add) {
        chain = &atomic_on;
        dev_exts[n_dev_exts++] = VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME;
    }
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR stats_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
        .pNext = chain,
        .pipelineExecutableInfo = VK_TRUE};
    if (c->exec_stats) {
        chain = &stats_on;
        dev_exts[n_dev_exts++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
    }
    VkPhysicalDeviceShaderClockFeaturesKHR clock_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CLOCK_FEATURES_KHR,
        .pNext = chain,
        .shaderDeviceClock = VK_TRUE};
    if (c->timeline) {
        chain = &clock_on;
        dev_exts[n_dev_exts++] = VK_KHR_SHADER_CLOCK_EXTENSION_NAME;
    }
    VkPhysicalDeviceShaderIntegerDotProductFeaturesKHR dot_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES_KHR,
        .pNext = chain,
        .shaderIntegerDotProduct = VK_TRUE};
    VkPhysicalDeviceVulkan11Features f11_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &dot_on,
        .storageBuffer16BitAccess = VK_TRUE};
    if (c->fast) {
        chain = &f11_on;
        dev_exts[n_dev_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    }
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = chain,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = n_dev_exts,
                              .ppEnabledExtensionNames = dev_exts};
    VkResult r = vkCreateDevice(c->phys, &dci, NULL, &c->dev);
    if (r != VK_SUCCESS) {
        c->dev = VK_NULL_HANDLE;
        return vk_check(r, err, "vkCreateDevice");
    }
    vkGetDeviceQueue(c->dev, c->queue_family, 0, &c->queue);
    return ZT_OK;
}

static int create_layouts(vk_ctx *c, zt_error *err) {
    VkDescriptorSetLayoutBinding b[VK_BINDINGS];
    for (int i = 0; i < VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo sci = {.sType =
                                               VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = VK_BINDINGS,
                                           .pBindings = b};
    int rc = vk_check(vkCreateDescriptorSetLayout(c->dev, &sci, NULL, &c->set_layout), err,
                      "vkCreateDescriptorSetLayout");
    if (rc) return rc;
    VkPushConstantRange push = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH * 4};
    VkPipelineLayoutCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &c->set_layout,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &push};
    return vk_check(vkCreatePipelineLayout(c->dev, &pci, NULL, &c->pipe_layout), err,
                    "vkCreatePipelineLayout");
}

static int create_commands(vk_ctx *c, zt_error *err) {
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = c->queue_family};
    int rc =
        vk_check(vkCreateCommandPool(c->dev, &pci, NULL, &c->cmd_pool), err, "vkCreateCommandPool");
    if (rc) return rc;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if ((rc = vk_check(vkAllocateCommandBuffers(c->dev, &ai, &c->once), err,
                       "vkAllocateCommandBuffers")))
        return rc;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    return vk_check(vkCreateFence(c->dev, &fci, NULL, &c->fence), err, "vkCreateFence");
}

int vk_ctx_create(vk_ctx **out, bool portable, zt_error *err) {
    *out = NULL;
    vk_ctx *c = calloc(1, sizeof *c);
    if (!c) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int rc;
    if ((rc = create_instance(c, err)) || (rc = pick_device(c, err)) ||
        (rc = create_device(c, portable, err)) || (rc = create_layouts(c, err)) ||
        (rc = create_commands(c, err)) ||
        (rc = vk_buf_create(c, &c->staging, VK_STAGING_BYTES, VK_MEM_UPLOAD, "staging", err)) ||
        (rc = vk_buf_create(c, &c->dummy, 256, VK_MEM_DEVICE, "dummy", err)) ||
        (c->timeline && (rc = vk_timeline_init(c, err)))) {
        vk_ctx_free(c);
        return rc;
    }
    *out = c;
    return ZT_OK;
}

void vk_ctx_free(vk_ctx *c) {
    if (!c) return;
    if (c->dev) {
        vkDeviceWaitIdle(c->dev);
        for (int i = 0; i < c->n_pipes; i++) vkDestroyPipeline(c->dev, c->pipes[i].pipe, NULL);
        for (int i = 0; i < VK_SH_COUNT; i++)
            if (c->modules[i]) vkDestroyShaderModule(c->dev, c->modules[i], NULL);
        for (int i = 0; i < c->n_pools; i++) vkDestroyDescriptorPool(c->dev, c->pools[i], NULL);
        vk_buf_free(c, &c->staging);
        vk_buf_free(c, &c->dummy);
        vk_buf_free(c, &c->tl_buf);
        if (c->fence) vkDestroyFence(c->dev, c->fence, NULL);
        if (c->cmd_pool) vkDestroyCommandPool(c->dev, c->cmd_pool, NULL);
        if (c->pipe_layout) vkDestroyPipelineLayout(c->dev, c->pipe_layout, NULL);
        if (c->set_layout) vkDestroyDescriptorSetLayout(c->dev, c->set_layout, NULL);
        vkDestroyDevice(c->dev, NULL);
    }
    if (c->instance) {
        if (c->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT destroy =
                (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                    c->instance, "vkDestroyDebugUtilsMessengerEXT");
            if (destroy) destroy(c->instance, c->messenger, NULL);
        }
        vkDestroyInstance(c->instance, NULL);
    }
    free(c->pipes);
    free(c->sets);
    free(c->pools);
    free(c);
}

/* ---- buffers ----------------------------------------------------------------- */

static int find_memory_type(const vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->mem_props.memoryTypes[i].propertyFlags & want) == want)
            return (int)i;
    return -1;
}

int vk_buf_create(vk_ctx *c, vk_buf *b, VkDeviceSize size, int mem, const char *label,
                  zt_error *err) {
    memset(b, 0, sizeof *b);
    if (size == 0) size = 16;
    size = (size + 15) & ~(VkDeviceSize)15;
    if (size > c->max_range)
        return zt_fail(err, ZT_EUNSUP,
                       "vulkan: %s needs %llu MiB in one storage buffer, more than this device's "
                       "maxStorageBufferRange (%llu MiB)",
                       label, (unsigned long long)(size >> 20),
                       (unsigned long long)(c->max_range >> 20));
    if (c->max_alloc && size > c->max_alloc)
        return zt_fail(err, ZT_EUNSUP,
                       "vulkan: %s needs %llu MiB in one allocation, more than this device's "
                       "maxMemoryAllocationSize (%llu MiB)",
                       label, (unsigned long long)(size >> 20),
                       (unsigned long long)(c->max_alloc >> 20));
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(c->dev, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        b->buf = VK_NULL_HANDLE;
        return vk_check(r, err, "vkCreateBuffer");
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    int type = -1;
    if (mem == VK_MEM_DEVICE) {
        type = find_memory_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    } else if (mem == VK_MEM_READBACK) {
        type = find_memory_type(c, req.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    }
    if (type < 0)
        type = find_memory_type(c, req.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (type < 0 && mem == VK_MEM_DEVICE) type = find_memory_type(c, req.memoryTypeBits, 0);
    if (type < 0) {
        vk_buf_free(c, b);
        return zt_fail(err, ZT_EBACKEND, "vulkan: no memory type for %s", label);
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    r = vkAllocateMemory(c->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        b->mem = VK_NULL_HANDLE;
        vk_buf_free(c, b);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
            return zt_fail(err, ZT_ENOMEM,
                           "vulkan: out of device memory allocating %s (%llu MiB; %llu MiB "
                           "allocated before it, device heap %llu MiB)",
                           label, (unsigned long long)(req.size >> 20),
                           (unsigned long long)(c->device_bytes >> 20),
                           (unsigned long long)(c->heap_bytes >> 20));
        return vk_check(r, err, "vkAllocateMemory");
    }
    b->size = size;
    VkMemoryPropertyFlags flags = c->mem_props.memoryTypes[type].propertyFlags;
    b->coherent = (flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
    if ((r = vkBindBufferMemory(c->dev, b->buf, b->mem, 0)) != VK_SUCCESS) {
        vk_buf_free(c, b);
        return vk_check(r, err, "vkBindBufferMemory");
    }
    if (flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT && mem != VK_MEM_DEVICE) {
        if ((r = vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map)) != VK_SUCCESS) {
            vk_buf_free(c, b);
            return vk_check(r, err, "vkMapMemory");
        }
    }
    if (flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) c->device_bytes += req.size;
    return ZT_OK;
}

void vk_buf_free(vk_ctx *c, vk_buf *b) {
    if (!b || !c->dev) return;
    /* Cached descriptor sets that point at the buffer die with it (a later
     * buffer may get the same handle); their pool slots are not reused. */
    for (int i = 0; b->buf && i < c->n_sets; i++)
        for (int j = 0; j < VK_BINDINGS; j++)
            if (c->sets[i].bufs[j] == b->buf) {
                c->sets[i] = c->sets[--c->n_sets];
                c->n_dead_sets++;
                i--;
                break;
            }
    if (b->buf) vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) vkFreeMemory(c->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static int begin_once(vk_ctx *c, zt_error *err) {
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    return vk_check(vkBeginCommandBuffer(c->once, &bi), err, "vkBeginCommandBuffer");
}

int vk_submit_wait(vk_ctx *c, VkCommandBuffer cb, zt_error *err) {
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    int rc = vk_check(vkQueueSubmit(c->queue, 1, &si, c->fence), err, "vkQueueSubmit");
    if (rc) return rc;
    rc = vk_check(vkWaitForFences(c->dev, 1, &c->fence, VK_TRUE, UINT64_MAX), err,
                  "vkWaitForFences");
    vkResetFences(c->dev, 1, &c->fence);
    return rc;
}

static void transfer_barrier(VkCommandBuffer cb, VkAccessFlags dst, VkPipelineStageFlags stage) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = dst};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

int vk_write(vk_ctx *c, vk_buf *dst, VkDeviceSize off, const void *src, size_t n, zt_error *err) {
    if (off + n > dst->size) return zt_fail(err, ZT_EINVAL, "vulkan: write past a buffer's end");
    if (dst->map) {
        memcpy((char *)dst->map + off, src, n);
        return ZT_OK;
    }
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VK_STAGING_BYTES ? n - done : VK_STAGING_BYTES;
        memcpy(c->staging.map, (const char *)src + done, chunk);
        int rc = begin_once(c, err);
        if (rc) return rc;
        VkBufferCopy region = {0, off + done, chunk};
        vkCmdCopyBuffer(c->once, c->staging.buf, dst->buf, 1, &region);
        transfer_barrier(c->once, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT);
        if ((rc = vk_check(vkEndCommandBuffer(c->once), err, "vkEndCommandBuffer")) ||
            (rc = vk_submit_wait(c, c->once, err)))
            return rc;
        done += chunk;
    }
    return ZT_OK;
}

int vk_read(vk_ctx *c, vk_buf *src, VkDeviceSize off, void *dst, size_t n, zt_error *err) {
    if (off + n > src->size) return zt_fail(err, ZT_EINVAL, "vulkan: read past a buffer's end");
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < VK_STAGING_BYTES ? n - done : VK_STAGING_BYTES;
        int rc = begin_once(c, err);
        if (rc) return rc;
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask =
                                  VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT};
        vkCmdPipelineBarrier(c->once,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                             VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        VkBufferCopy region = {off + done, 0, chunk};
        vkCmdCopyBuffer(c->once, src->buf, c->staging.buf, 1, &region);
        transfer_barrier(c->once, VK_ACCESS_HOST_READ_BIT, VK_PIPELINE_STAGE_HOST_BIT);
        if ((rc = vk_check(vkEndCommandBuffer(c->once), err, "vkEndCommandBuffer")) ||
            (rc = vk_submit_wait(c, c->once, err)))
            return rc;
        memcpy((char *)dst + done, c->staging.map, chunk);
        done += chunk;
    }
    return ZT_OK;
}

int vk_fill(vk_ctx *c, vk_buf *b, uint32_t word, zt_error *err) {
    int rc = begin_once(c, err);
    if (rc) return rc;
    vkCmdFillBuffer(c->once, b->buf, 0, VK_WHOLE_SIZE, word);
    transfer_barrier(c->once, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
                     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    if ((rc = vk_check(vkEndCommandBuffer(c->once), err, "vkEndCommandBuffer"))) return rc;
    return vk_submit_wait(c, c->once, err);
}

/* ---- pipelines and descriptor sets ----------------------------------------- */

static int shader_module(vk_ctx *c, int shader, VkShaderModule *out, zt_error *err) {
    if (!c->modules[shader]) {
        vk_spirv code = vk_shader_code(shader, c->fast);
        VkShaderModuleCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = code.bytes,
                                       .pCode = code.code};
        int rc = vk_check(vkCreateShaderModule(c->dev, &ci, NULL, &c->modules[shader]), err,
                          "vkCreateShaderModule");
        if (rc) {
            c->modules[shader] = VK_NULL_HANDLE;
            return rc;
        }
    }
    *out = c->modules[shader];
    return ZT_OK;
}

/* What the driver says it compiled for the pipeline's one executable:
 * up to 32 statistics; returns their count. */
static uint32_t get_stats(vk_ctx *c, VkPipeline pipe, VkPipelineExecutableStatisticKHR st[32]) {
    PFN_vkGetPipelineExecutableStatisticsKHR get =
        (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(
            c->dev, "vkGetPipelineExecutableStatisticsKHR");
    if (!get) return 0;
    VkPipelineExecutableInfoKHR info = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                                        .pipeline = pipe};
    uint32_t n = 32;
    for (uint32_t i = 0; i < n; i++)
        st[i] = (VkPipelineExecutableStatisticKHR){
            .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    return get(c->dev, &info, &n, st) < 0 ? 0 : n;
}

/* The registers a thread of the pipeline takes, where the driver names
 * them (NVIDIA: "Register Count"); 0 otherwise. */
static uint32_t pipeline_regs(vk_ctx *c, VkPipeline pipe) {
    VkPipelineExecutableStatisticKHR st[32];
    uint32_t n = get_stats(c, pipe, st);
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(st[i].name, "Register Count")) {
            if (st[i].format == VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR)
                return (uint32_t)st[i].value.u64;
            if (st[i].format == VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR)
                return st[i].value.i64 > 0 ? (uint32_t)st[i].value.i64 : 0;
        }
    return 0;
}

uint32_t vk_pipeline_regs(const vk_ctx *c, VkPipeline pipe) {
    for (int i = 0; i < c->n_pipes; i++)
        if (c->pipes[i].pipe == pipe) return c->pipes[i].regs;
    return 0;
}

/* ZT_VK_STATS=1: those statistics, one line per pipeline: the shader, its
 * first launch constants (for the matvecs: workgroup size, weight type,
 * units per row, rows, rows per workgroup, staged, team lanes, units
 * loaded before the staging) and each statistic (NVIDIA: registers,
 * shared memory, ...). */
static void print_stats(vk_ctx *c, int shader, const uint32_t spec[VK_SPEC], VkPipeline pipe) {
    VkPipelineExecutableStatisticKHR st[32];
    uint32_t n = get_stats(c, pipe, st);
    if (!n) return;
    fprintf(stderr, "zt vulkan stats: %s wg %u type %u ku %u n %u r %u stage %u team %u pf %u:",
            vk_shader_name(shader), spec[0], spec[1], spec[2], spec[3], spec[4], spec[22], spec[23],
            spec[21]);
    for (uint32_t i = 0; i < n; i++) {
        fprintf(stderr, " %s=", st[i].name);
        switch (st[i].format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
            fprintf(stderr, "%u", st[i].value.b32);
            break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
            fprintf(stderr, "%lld", (long long)st[i].value.i64);
            break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
            fprintf(stderr, "%llu", (unsigned long long)st[i].value.u64);
            break;
        default:
            fprintf(stderr, "%g", st[i].value.f64);
        }
    }
    fputc('\n', stderr);
}

int vk_pipeline(vk_ctx *c, int shader, const uint32_t spec[VK_SPEC], VkPipeline *out,
                zt_error *err) {
    for (int i = 0; i < c->n_pipes; i++)
        if (c->pipes[i].shader == shader &&
            !memcmp(c->pipes[i].spec, spec, sizeof(uint32_t) * VK_SPEC)) {
            *out = c->pipes[i].pipe;
            return ZT_OK;
        }
    if (c->n_pipes == c->cap_pipes) {
        int cap = c->cap_pipes ? 2 * c->cap_pipes : 32;
        vk_pipe_entry *p = realloc(c->pipes, sizeof *p * (size_t)cap);
        if (!p) return zt_fail(err, ZT_ENOMEM, "out of memory");
        c->pipes = p;
        c->cap_pipes = cap;
    }
    VkShaderModule module;
    int rc = shader_module(c, shader, &module, err);
    if (rc) return rc;
    VkSpecializationMapEntry map[VK_SPEC];
    for (int i = 0; i < VK_SPEC; i++) map[i] = (VkSpecializationMapEntry){(uint32_t)i, 4u * i, 4};
    VkSpecializationInfo si = {VK_SPEC, map, sizeof(uint32_t) * VK_SPEC, spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = module,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .flags = c->exec_stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0,
        .layout = c->pipe_layout};
    vk_pipe_entry *e = &c->pipes[c->n_pipes];
    rc = vk_check(vkCreateComputePipelines(c->dev, VK_NULL_HANDLE, 1, &ci, NULL, &e->pipe), err,
                  "vkCreateComputePipelines");
    if (rc) return zt_fail_prefix(err, "shader %s", vk_shader_name(shader));
    if (c->stats) print_stats(c, shader, spec, e->pipe);
    e->regs = c->exec_stats ? pipeline_regs(c, e->pipe) : 0;
    e->shader = shader;
    memcpy(e->spec, spec, sizeof e->spec);
    c->n_pipes++;
    *out = e->pipe;
    return ZT_OK;
}

static int grow_pools(vk_ctx *c, zt_error *err) {
    VkDescriptorPool *p = realloc(c->pools, sizeof *p * (size_t)(c->n_pools + 1));
    if (!p) return zt_fail(err, ZT_ENOMEM, "out of memory");
    c->pools = p;
    VkDescriptorPoolSize size = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_SETS_PER_POOL * VK_BINDINGS};
    VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = VK_SETS_PER_POOL,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &size};
    int rc = vk_check(vkCreateDescriptorPool(c->dev, &ci, NULL, &c->pools[c->n_pools]), err,
                      "vkCreateDescriptorPool");
    if (!rc) c->n_pools++;
    return rc;
}

int vk_set(vk_ctx *c, vk_buf *const bufs[VK_BINDINGS], VkDescriptorSet *out, zt_error *err) {
    VkBuffer key[VK_BINDINGS];
    for (int i = 0; i < VK_BINDINGS; i++)
        key[i] = bufs[i] && bufs[i]->buf ? bufs[i]->buf : c->dummy.buf;
    for (int i = 0; i < c->n_sets; i++)
        if (!memcmp(c->sets[i].bufs, key, sizeof key)) {
            *out = c->sets[i].set;
            return ZT_OK;
        }
    if (c->n_sets == c->cap_sets) {
        int cap = c->cap_sets ? 2 * c->cap_sets : 64;
        vk_set_entry *s = realloc(c->sets, sizeof *s * (size_t)cap);
        if (!s) return zt_fail(err, ZT_ENOMEM, "out of memory");
        c->sets = s;
        c->cap_sets = cap;
    }
    int rc;
    if (c->n_sets + c->n_dead_sets == c->n_pools * VK_SETS_PER_POOL && (rc = grow_pools(c, err)))
        return rc;
    vk_set_entry *e = &c->sets[c->n_sets];
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = c->pools[c->n_pools - 1],
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &c->set_layout};
    if ((rc = vk_check(vkAllocateDescriptorSets(c->dev, &ai, &e->set), err,
                       "vkAllocateDescriptorSets")))
        return rc;
    VkDescriptorBufferInfo info[VK_BINDINGS];
    VkWriteDescriptorSet w[VK_BINDINGS];
    for (int i = 0; i < VK_BINDINGS; i++) {
        info[i] = (VkDescriptorBufferInfo){key[i], 0, VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = e->set,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &info[i]};
    }
    vkUpdateDescriptorSets(c->dev, VK_BINDINGS, w, 0, NULL);
    memcpy(e->bufs, key, sizeof key);
    c->n_sets++;
    *out = e->set;
    return ZT_OK;
}

/* ---- recording ---------------------------------------------------------------- */

void vk_record(vk_ctx *c, VkCommandBuffer cb, const vk_dispatch *d, int n, VkQueryPool stamps) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    /* Diagnostic only, results are wrong: ZT_VK_DIAG_NO_BARRIERS=1 records
     * no barriers, so that `zt bench` measures what the barriers between
     * dependent dispatches cost (H100: half the decode step, bench/results/
     * 2026-11-27-vulkan-h100.md). */
    const char *diag = getenv("ZT_VK_DIAG_NO_BARRIERS");
    bool barriers = !(diag && *diag && strcmp(diag, "0") != 0);
    if (stamps) vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, stamps, 0);
    for (int i = 0; i < n; i++) {
        if (i > 0 && barriers)
            vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, d[i].pipe);
        vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipe_layout, 0, 1, &d[i].set,
                                0, NULL);
        uint32_t push[VK_PUSH];
        memcpy(push, d[i].push, sizeof push);
        push[3] = (uint32_t)i; /* the timeline slot (timeline builds) */
        vkCmdPushConstants(cb, c->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH * 4, push);
        vkCmdDispatch(cb, d[i].groups[0], d[i].groups[1], d[i].groups[2]);
        if (stamps)
            vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, stamps, (uint32_t)i + 1);
    }
}

int vk_run(vk_ctx *c, const vk_dispatch *d, int n, zt_error *err) {
    int rc = begin_once(c, err);
    if (rc) return rc;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask =
                              VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(c->once,
                         VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    vk_record(c, c->once, d, n, VK_NULL_HANDLE);
    if ((rc = vk_check(vkEndCommandBuffer(c->once), err, "vkEndCommandBuffer"))) return rc;
    return vk_submit_wait(c, c->once, err);
}
