# Fuzzing (issue #7): libFuzzer targets over every parser; see fuzz/README.md.
#
#   make fuzz            builds every target into $(FUZZ_BUILD)/
#   make fuzz-ci         replays fuzz/regressions, then runs each target for
#                        FUZZ_CI_SECONDS (20) on its seed corpus: the CI pass
#   make fuzz-seeds      rewrites fuzz/corpus/* with tools/make_fuzz_seeds.c
#   make fuzz-run T=gguf [FUZZ_SECONDS=3600]
#                        one long campaign, growing $(FUZZ_BUILD)/corpus/T
#
# Needs clang with the libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev).
# The library is compiled once with -fsanitize=fuzzer-no-link (coverage
# only), ASan and UBSan; UBSan does not recover, so undefined behaviour is a
# crash the fuzzer keeps.

FUZZ_CC     ?= $(shell command -v clang-14 || command -v clang || echo clang)
FUZZ_BUILD  ?= build-fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(ARCHFLAGS) -Wall -Wextra \
               -Wno-unused-parameter -fno-strict-aliasing -Iinclude -Isrc -I.
FUZZ_CI_SECONDS ?= 20
FUZZ_SECONDS ?= 3600
# One input may take this long (s) before it counts as a hang; a single
# allocation over FUZZ_MALLOC_MB is reported (inputs are a few KB, so only
# a count taken on trust from the input can ask for that much).
FUZZ_TIMEOUT ?= 10
FUZZ_MALLOC_MB ?= 256
FUZZ_OPTS   = -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=2048 -malloc_limit_mb=$(FUZZ_MALLOC_MB) \
              -max_len=65536 -print_final_stats=1

# Targets: name -> source (tok_spm and tok_bpe share fuzz_tokenizer.c).
FUZZ_TARGETS := gguf hf json tok_spm tok_bpe hf_tokenizer chat
# The HTTP server's request bodies and request parser, once src/server/ exists.
ifneq ($(wildcard src/server/openai.h),)
FUZZ_TARGETS += openai
endif
ifneq ($(wildcard src/server/http.h),)
ifneq ($(wildcard fuzz/fuzz_http.c),)
FUZZ_TARGETS += http
endif
endif
FUZZ_BINS   := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libzt-fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

FUZZ_LINK = $(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer

$(FUZZ_BUILD)/fuzz_tok_spm: fuzz/fuzz_tokenizer.c fuzz/fuzz_util.h $(FUZZ_BUILD)/libzt-fuzz.a
	$(FUZZ_LINK) -DFUZZ_VOCAB='"tests/vocab/ggml-vocab-phi-3.gguf"' -o $@ $< \
	    $(FUZZ_BUILD)/libzt-fuzz.a $(LDLIBS)

$(FUZZ_BUILD)/fuzz_tok_bpe: fuzz/fuzz_tokenizer.c fuzz/fuzz_util.h $(FUZZ_BUILD)/libzt-fuzz.a
	$(FUZZ_LINK) -DFUZZ_VOCAB='"tests/vocab/ggml-vocab-gpt-2.gguf"' -o $@ $< \
	    $(FUZZ_BUILD)/libzt-fuzz.a $(LDLIBS)

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h $(FUZZ_BUILD)/libzt-fuzz.a
	$(FUZZ_LINK) -o $@ $< $(FUZZ_BUILD)/libzt-fuzz.a $(LDLIBS)

fuzz: $(FUZZ_BINS)

# The seed generator is an ordinary (unsanitized) program over the library.
$(FUZZ_BUILD)/make_fuzz_seeds: tools/make_fuzz_seeds.c $(BUILD)/libzt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libzt.a $(LDFLAGS) $(LDLIBS)

fuzz-seeds: $(FUZZ_BUILD)/make_fuzz_seeds
	$(FUZZ_BUILD)/make_fuzz_seeds fuzz/corpus

# CI: the kept crash inputs first (they must all pass), then a bounded run
# of each target over its seeds; new inputs go to $(FUZZ_BUILD)/corpus, the
# committed corpus is only read.
fuzz-ci: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) bash tests/e2e/fuzz_regressions.sh
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_CI_SECONDS) FUZZ_OPTS="$(FUZZ_OPTS)" \
	    bash fuzz/run_ci.sh $(FUZZ_TARGETS)

fuzz-run: $(FUZZ_BUILD)/fuzz_$(T)
	@mkdir -p $(FUZZ_BUILD)/corpus/$(T)
	nice -n 19 $(FUZZ_BUILD)/fuzz_$(T) $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) \
	    -dict=fuzz/dict/$(T).dict -artifact_prefix=$(FUZZ_BUILD)/crash-$(T)- \
	    $(FUZZ_BUILD)/corpus/$(T) fuzz/corpus/$(T)

.PHONY: fuzz fuzz-ci fuzz-seeds fuzz-run
-include $(FUZZ_LIB_OBJ:.o=.d)
