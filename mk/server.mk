# zt serve: the chat page in web/chat/ is embedded into page.o by the
# assembler (.incbin, see src/server/page.c); the compiler's dependency
# files do not see those files, so say it here.
$(BUILD)/src/server/page.o: $(wildcard web/chat/*)
