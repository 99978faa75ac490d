/*
 * The chat page, embedded in the binary: the files of web/chat/ are pulled
 * in at build time by the assembler's .incbin (mk/server.mk makes this
 * object depend on them), so `zt serve` needs nothing beside itself and
 * there is no generated source to keep in step.
 */
#include <string.h>

#include "server/server.h"

/* EMBED(sym, "file"): sym[] holds the file's bytes, sym_end marks its end. */
#define EMBED(sym, file)                                                                   \
    __asm__(".pushsection .rodata\n"                                                       \
            ".balign 16\n"                                                                 \
            ".globl " #sym "\n" #sym ":\n"                                                 \
            ".incbin \"" file "\"\n"                                                       \
            ".globl " #sym "_end\n" #sym "_end:\n"                                         \
            ".byte 0\n"                                                                    \
            ".popsection\n");                                                              \
    extern const char sym[], sym##_end[]

EMBED(zt_page_index_html, "web/chat/index.html");
EMBED(zt_page_style_css, "web/chat/style.css");
EMBED(zt_page_app_js, "web/chat/app.js");
EMBED(zt_page_markdown_js, "web/chat/markdown.js");

const page_asset *page_find(const char *path) {
    static page_asset assets[5];
    if (!assets[0].path) { /* sizes are link-time values: fill the table on first use */
        assets[0] = (page_asset){"/", "text/html; charset=utf-8", zt_page_index_html,
                                 (size_t)(zt_page_index_html_end - zt_page_index_html)};
        assets[1] = (page_asset){"/index.html", "text/html; charset=utf-8", zt_page_index_html,
                                 (size_t)(zt_page_index_html_end - zt_page_index_html)};
        assets[2] = (page_asset){"/style.css", "text/css; charset=utf-8", zt_page_style_css,
                                 (size_t)(zt_page_style_css_end - zt_page_style_css)};
        assets[3] = (page_asset){"/app.js", "text/javascript; charset=utf-8", zt_page_app_js,
                                 (size_t)(zt_page_app_js_end - zt_page_app_js)};
        assets[4] = (page_asset){"/markdown.js", "text/javascript; charset=utf-8",
                                 zt_page_markdown_js,
                                 (size_t)(zt_page_markdown_js_end - zt_page_markdown_js)};
    }
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
        if (!strcmp(path, assets[i].path)) return &assets[i];
    return NULL;
}
