/*
 * The regular expressions of byte-level BPE pre-tokenizers (GPT-2's
 * "'s|'t|...| ?\p{L}+|...", Llama 3's, Qwen2's, and any Split pattern of a
 * tokenizer.json), matched the way the JavaScript reference does: a
 * backtracking matcher over code points, leftmost match, alternatives in
 * order, greedy quantifiers that give back one character at a time.
 *
 * Syntax: alternation, groups (...), (?:...), (?i:...) (ASCII case
 * folding, as transformers.js rewrites it), lookahead (?=...) (?!...),
 * ^ $ ., classes [...] [^...] with ranges, quantifiers * + ? {n} {n,}
 * {n,m} and their lazy forms, escapes \s \S \d \D \w \W \p{..} \P{..}
 * \r \n \t \f \v \0 \xHH \x{H..} \uHHHH \u{H..} and escaped punctuation.
 * \s is JavaScript's whitespace (see uni_is_space_js), \d and \w ASCII.
 */
#ifndef ZT_TOKENIZER_REGEX_H
#define ZT_TOKENIZER_REGEX_H

#include "zt.h"

#include <stdint.h>

typedef struct tok_regex tok_regex;

/* Compiles a UTF-8 pattern; errors name the pattern offset at fault. */
int tok_regex_compile(const char *pattern, tok_regex **out, zt_error *err);
void tok_regex_free(tok_regex *re);

/* Finds the leftmost match starting at or after `from` in cps[0, n).
 * Returns its start and sets *end, or -1 when there is none. Empty matches
 * are skipped, as a split on the pattern would. */
long tok_regex_search(const tok_regex *re, const uint32_t *cps, long n, long from, long *end);

#endif
