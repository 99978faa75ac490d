# Sanitizers (issue #7): the whole suite under AddressSanitizer (with
# LeakSanitizer) and UndefinedBehaviorSanitizer.
#
#   make asan     builds $(ASAN_BUILD)/zt and zt-tests with -fsanitize=
#                 address,undefined -O1 and runs tests/run.sh over them; any
#                 sanitizer report fails the suite (UBSan halts on the first
#                 error, ASan/LSan make the process exit non-zero)
#   make leaks    tests/e2e/leaks.sh alone over $(BUILD): zero bytes lost by
#                 `zt run` and `zt logits` (LeakSanitizer)
#
# ASAN_CC picks the compiler (default $(CC); clang works too).

ASAN_BUILD ?= build-asan
ASAN_CC ?= $(CC)
ASAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=undefined
# detect_leaks is ASan's default on x86-64 Linux; said here so it is not lost
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:check_initialization_order=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            LSAN_OPTIONS=report_objects=0

asan:
	$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC="$(ASAN_CC)" OPT="$(ASAN_FLAGS)" \
	    $(ASAN_BUILD)/zt $(ASAN_BUILD)/zt-tests
	$(ASAN_ENV) tests/run.sh $(ASAN_BUILD)

leaks: $(BUILD)/zt
	ZT=$(abspath $(BUILD)/zt) bash tests/e2e/leaks.sh

.PHONY: asan leaks
