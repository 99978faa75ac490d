#!/usr/bin/env python3
"""Writes tests/tokenizer/corpus.jsonl: the strings zt's tokenizers are
checked on against the reference implementations (tests/node/).

One string per line, as a JSON string, or as {"hex": "..."} when the bytes
are not valid UTF-8 (those lines test the U+FFFD replacement).

Sources (all public domain or written here):
  * King James Bible verses, printed by the `bible` program (Debian packages
    bible-kjv and bible-kjv-text);
  * fortunes (Debian fortunes-min, /usr/share/games/fortunes);
  * random word sequences from the French, German, Spanish and Italian word
    lists (Debian wfrench, wngerman, wspanish, witalian);
  * sentences in many languages and scripts, code snippets, chat-template
    strings with special-token spellings, whitespace runs, numbers,
    contractions, emoji and other astral characters, combining sequences,
    invalid UTF-8, and very long words, written or generated below with a
    fixed seed.
Characters not assigned in the local Unicode Character Database
(/usr/share/unicode, Debian unicode-data) are left out: zt's tables come
from it, and a newer Node knows characters it does not.

Usage: tools/gen_tokenizer_corpus.py > tests/tokenizer/corpus.jsonl
"""
import glob
import json
import os
import random
import subprocess
import sys

rng = random.Random(20240611)
UCD = "/usr/share/unicode/UnicodeData.txt"


def assigned_set():
    ok = set()
    pending = None
    with open(UCD, encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp = int(fields[0], 16)
            if fields[1].endswith("First>"):
                pending = cp
            elif fields[1].endswith("Last>"):
                ok.update(range(pending, cp + 1))
            else:
                ok.add(cp)
    return ok


ASSIGNED = assigned_set()


def known(s):
    return all(ord(c) in ASSIGNED and not 0xD800 <= ord(c) <= 0xDFFF for c in s)


out = []
seen = set()


def add(s):
    if isinstance(s, bytes):
        try:
            s = s.decode("utf-8")
        except UnicodeDecodeError:
            if s not in seen:
                seen.add(s)
                out.append(json.dumps({"hex": s.hex()}))
            return
    if s in seen or not known(s):
        return
    seen.add(s)
    out.append(json.dumps(s, ensure_ascii=False))


# ---- prose from Debian packages -------------------------------------------

def bible_verses():
    ranges = ["Ge1:1-11:32", "Ex20:1-20:26", "Ps1:1-40:17", "Pr1:1-10:32", "Ec1:1-12:14",
              "Isa40:1-55:13", "Mt5:1-7:29", "Lu15:1-15:32", "Joh1:1-3:36", "1Co13:1-15:58",
              "Re1:1-4:11", "Job38:1-41:34"]
    verses = []
    for r in ranges:
        try:
            text = subprocess.run(["bible", "-f", r], capture_output=True, text=True,
                                  check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            sys.exit("needs the `bible` program: apt-get install bible-kjv")
        for line in text.splitlines():
            if line.strip():
                verses.append(line.strip())
    return verses


verses = bible_verses()
for v in rng.sample(verses, min(1500, len(verses))):
    ref, _, body = v.partition(" ")
    style = rng.random()
    add(v if style < 0.3 else body if style < 0.8 else " " + body)
for k in range(60):  # paragraphs of several verses, with newlines
    start = rng.randrange(len(verses) - 8)
    sep = rng.choice(["\n", " ", "\n\n", "\r\n"])
    add(sep.join(v.partition(" ")[2] for v in verses[start:start + rng.randrange(2, 8)]))

fortunes = []
for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
    if "." in os.path.basename(path):
        continue
    with open(path, encoding="utf-8", errors="replace") as f:
        fortunes += [x.strip("\n") for x in f.read().split("\n%\n") if x.strip()]
if not fortunes:
    sys.exit("needs fortunes: apt-get install fortunes-min")
for fo in rng.sample(fortunes, min(700, len(fortunes))):
    add(fo[:3000])

words = {}
for lang in ["french", "ngerman", "spanish", "italian"]:
    path = "/usr/share/dict/" + lang
    if not os.path.exists(path):
        sys.exit("needs word lists: apt-get install wfrench wngerman wspanish witalian")
    with open(path, encoding="utf-8", errors="replace") as f:
        words[lang] = [w.strip() for w in f if w.strip() and "'" not in w[:1]]
for k in range(800):
    lang = rng.choice(sorted(words))
    ws = [rng.choice(words[lang]) for _ in range(rng.randrange(1, 16))]
    s = ""
    for i, w in enumerate(ws):
        if i:
            s += rng.choice([" ", " ", " ", ", ", "; ", " - ", "  ", " « ", " » ", "\n"])
        s += w.capitalize() if rng.random() < 0.15 else w
    s += rng.choice(["", ".", "!", "?", " ?", "…", ".\n"])
    add(s)

# ---- written here: many scripts --------------------------------------------

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I can't believe it's already 5 o'clock; we'll be late!",
    "She said, \"Don't touch that!\" — and left.",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la boulangerie ? Elle est à côté de l'église.",
    "Ça va très bien, merci ! Et vous ?",
    "Die Straße ist naß, weil es gestern geregnet hat.",
    "Donaudampfschifffahrtsgesellschaftskapitän ist ein langes Wort.",
    "Größere Äpfel schmecken süßer als Überraschungen.",
    "¿Dónde está el baño? ¡Necesito ayuda ahora mismo!",
    "El niño comió una manzana y bebió agua fría.",
    "La vita è bella, ma è anche difficile.",
    "Ação, coração e informação são palavras em português.",
    "Zażółć gęślą jaźń — to polskie zdanie testowe.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép.",
    "Pijamalı hasta yağız şoföre çabucak güvendi.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Привет, как дела? Всё хорошо, спасибо.",
    "Жълтата дюля беше щастлива, че пухът, който цъфна, замръзна като гьон.",
    "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "我能吞下玻璃而不伤身体。",
    "今天天气很好，我们去公园散步吧！",
    "中华人民共和国成立于1949年10月1日。",
    "私はガラスを食べられます。それは私を傷つけません。",
    "東京タワーは333メートルです。ひらがな、カタカナ、漢字。",
    "ｶﾀｶﾅ　全角スペース　ＡＢＣ１２３",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요.",
    "안녕하세요, 만나서 반갑습니다!",
    "أنا قادر على أكل الزجاج و هذا لا يؤلمني.",
    "مرحبا بالعالم! كيف حالك اليوم؟ ١٢٣٤٥",
    "אני יכול לאכול זכוכית וזה לא מזיק לי.",
    "שָׁלוֹם עֲלֵיכֶם",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती.",
    "नमस्ते दुनिया! १२३४",
    "আমি কাঁচ খেতে পারি, তাতে আমার কোনো ক্ষতি হয় না।",
    "நான் கண்ணாடி சாப்பிடுவேன், அதனால் எனக்கு ஒரு கேடும் வராது.",
    "ฉันกินกระจกได้ แต่มันไม่ทำให้ฉันเจ็บ",
    "Tôi có thể ăn thủy tinh mà không hại gì.",
    "Cộng hòa Xã hội chủ nghĩa Việt Nam",
    "მინას ვჭამ და არა მტკივა.",
    "Կրնամ ապակի ուտել և ինծի անհանգիստ չըներ։",
    "ខ្ញុំអាចញុំកញ្ចក់បាន ដោយគ្មានបញ្ហារ",
    "ཤེལ་སྒོ་ཟ་ནས་ང་ན་གི་མ་རེད།",
    "Mi povas manĝi vitron, ĝi ne damaĝas min.",
    "Ég get etið gler án þess að meiða mig.",
    "Jeg kan spise glas, det gør ikke ondt på mig.",
    "Sîne klâwen durh die wolken sint geslagen.",
    "ᚠᛇᚻ᛫ᛒᛦᚦ᛫ᚠᚱᚩᚠᚢᚱ᛫ᚠᛁᚱᚪ᛫ᚷᛖᚻᚹᛦᛚᚳᚢᛗ",
    "Ṡ ḋ ḟ ġ ṁ ṗ ṡ ṫ ẁ ẃ ẅ ỳ",
    "ĲsselmeeR en ĳs; ﬁnancial ﬂow; ǅemal",
    "Ⅻ ⅻ ½ ¾ ⅓ ² ³ ¹ ⁴ ₂ ∞ ≠ ≤ ≥ ∑ ∫ √",
    "𝐇𝐞𝐥𝐥𝐨 𝕎𝕠𝕣𝕝𝕕 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝓢𝓬𝓻𝓲𝓹𝓽",
    "𠀀𠀁𠀂 𪚥 𩸽 are rare CJK characters.",
    "Emoji: 😀😃😄😁 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 ❤️ ✌🏿",
    "🦙 llamas and 🐪 camels and 🦕 dinosaurs",
    "Math: E = mc², ∀x ∈ ℝ: x² ≥ 0, α + β = γ.",
    "Currency: $100, €50, £30, ¥1000, ₹500, ₿0.01",
    "Prices: 1,299.99 USD; 3.14159; -42; +7; 1e-10; 0x1F; 0b1010",
    "Dates: 2024-06-11, 11/06/2024, 11.06.2024, June 11th, 2024",
    "Phone: +1 (555) 123-4567; email: someone@example.com",
    "URL: https://example.com/path?q=hello+world&lang=en#section-2",
    "C:\\Users\\Public\\Documents\\report_final(2).docx",
    "Hello world",
    " Hello world",
    "Hello World!",
    "HELLO WORLD",
    "hello_world_123",
    "I'm, you're, he's, she'd, we've, they'll, it's, 'tis, y'all, o'clock",
    "IT'S, YOU'RE, WE'LL, THEY'VE, I'D, SHE'S, 'S 'T 'RE 'VE 'M 'LL 'D",
    "Rock 'n' roll isn't dead; 'twas the night before Christmas.",
    "   leading spaces and trailing spaces   ",
    "tabs\tbetween\twords\tand\t\tdouble tabs",
    "line one\nline two\r\nline three\rline four",
    "mixed\u00a0no-break\u2009thin\u3000ideographic\u2028line-sep\u2029para-sep",
    "zero\u200bwidth\u200cjoiner\u200dtext\ufeffbom",
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 — decomposed accents",
    "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af — conjoining jamo",
    "q\u0307\u0323 \u1e0b\u0323 \u0041\u030a \u212b \u2126 \u00c5",
    "Vie\u0302\u0323t Nam — Vietnamese with combining marks",
    "\u0915\u094d\u0937 \u0924\u094d\u0930 \u091c\u094d\u091e",
]
for s in SENTENCES:
    add(s)
    add(" " + s)
    add(s + "\n")
    add(s.upper())
    add("\t" + s.lower() + "  ")

CODE = [
    "int main(int argc, char **argv) {\n    printf(\"hello, world\\n\");\n    return 0;\n}\n",
    "for (size_t i = 0; i < n; i++) sum += a[i] * b[i];",
    "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "class Foo(Bar):\n    \"\"\"Docstring.\"\"\"\n\n    def __init__(self, x: int = 0) -> None:\n        self.x = x\n",
    "print(f\"{name!r:>10} = {value:.3f}\")",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);",
    "function* gen() { yield* [1, 2, 3]; }",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "impl<'a, T: Clone + 'a> Iterator for Iter<'a, T> { type Item = &'a T; }",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY name DESC;",
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Test</title></head>\n<body><p class=\"x\">Hi &amp; bye</p></body>\n</html>",
    "{\"name\": \"zt\", \"version\": \"1.0.0\", \"tags\": [\"llm\", \"c\"], \"nested\": {\"a\": null, \"b\": true}}",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}'\ndone\n",
    "\\begin{equation}\n  \\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}\n\\end{equation}",
    "all: build\n\nbuild:\n\t$(CC) $(CFLAGS) -o $@ $^\n",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares of evens",
    "if (a && !b || c != d) { return ~x << 3 >> 1 ^ 0xFF; }",
    "    \n    indented\n        more\n            most\n",
    "a=1;b=2;c=a+b;d=c*2;e=d/3;f=e%4;",
    "std::vector<std::map<std::string, int>> v{{{\"k\", 1}}};",
    "// TODO(someone): fix this -- it's broken!!!\n/* block\n * comment */",
    "regex = r\"^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@(?:[a-z0-9-]+\\.)+[a-z]{2,}$\"",
    "    def __repr__(self):\n\t\treturn '<%s %r>' % (type(self).__name__, self.x)",
    "key: value\nlist:\n  - one\n  - two\nmap: {a: 1, b: 2}\n",
    "diff --git a/x.c b/x.c\n@@ -1,3 +1,4 @@\n-old line\n+new line\n context\n",
    "0000000 7f45 4c46 0201 0100 0000 0000 0000 0000",
    "git commit -m \"Fix off-by-one in tokenizer (closes #123)\"",
    "user@host:~/src$ make -j8 && ./run --flag=value --other 'quoted arg'",
]
for s in CODE:
    add(s)
    add(s.replace("    ", "\t"))
    add(" " + s.strip())
# synthetic code lines: identifiers, keywords, operators, literals, indents
KEYWORDS = ["if", "else", "for", "while", "return", "def", "class", "fn", "let", "const", "int",
            "static", "void", "import", "from", "struct", "match", "case", "break", "None", "NULL"]
OPS = [" = ", " == ", " != ", " += ", " -> ", " => ", " && ", " || ", "::", ".", ", ", "; ", " << ",
       " >> ", " % ", "**", "++", "->", ":", " ? ", " |> "]
for k in range(250):
    line = rng.choice(["", "    ", "\t", "        ", "\t\t", "  "])
    for _ in range(rng.randrange(2, 12)):
        r = rng.random()
        if r < 0.25:
            line += rng.choice(KEYWORDS) + " "
        elif r < 0.55:
            parts = [rng.choice(["x", "buf", "n_tokens", "getValue", "self", "HTTPServer", "i", "len",
                                 "_private", "camelCase", "snake_case_name", "ids", "tmp2"])
                     for _ in range(rng.randrange(1, 3))]
            line += rng.choice(["_", "", "."]).join(parts)
        elif r < 0.75:
            line += rng.choice(OPS)
        elif r < 0.85:
            line += rng.choice(["0", "1", "42", "3.14", "0xFF", "1e-5", "'a'", "\"str\"", "[]", "{}", "()"])
        else:
            line += rng.choice(["(", ")", "[", "]", "{", "}", "<", ">", "#", "//", "/*", "*/", "\\"])
    add(line + rng.choice(["", ";", ":", " {", "\n", ")", "\n}"]))

# ---- chat templates and special-token spellings -----------------------------

SPECIALS = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>",
            "<|system|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end_of_text|>",
            "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<think>",
            "</think>", "<|placeholder1|>", "[INST]", "[/INST]", "<|fim_prefix|>", "<tool_call>",
            "<|reserved_special_token_5|>", "<|end", "|>", "<|", "< s>", "<S>", "<|END|>"]
TEMPLATES = [
    "<|user|>\nHello<|end|>\n<|assistant|>\n",
    "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n4<|end|>\n",
    "<s>[INST] What is the capital of France? [/INST] Paris</s>",
    "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>",
    "<|user|>  \n\t Hello   <|end|>   \n<|assistant|>",
    "text<|endoftext|>more text<|endoftext|><|endoftext|>",
    "<s><s></s></s><unk>",
    "a<|end|>b<|end|>c",
]
for s in TEMPLATES:
    add(s)
    add(" " + s)
    add(s.replace("\n", " "))
for k in range(200):
    parts = []
    for _ in range(rng.randrange(1, 6)):
        parts.append(rng.choice(SPECIALS) if rng.random() < 0.5 else
                     rng.choice(["hi", " Hello", "\n", " ", "\n\n", "world ", "  x", "123", "é"]))
    add("".join(parts))

# ---- whitespace, numbers, contractions --------------------------------------

WS = [" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\u00a0", "\u3000", "\u2028", "\u0085",
      "\ufeff", "\u200b", "\v", "\f", " \n", "\t\n", " \t "]
for k in range(250):
    s = ""
    for _ in range(rng.randrange(1, 8)):
        s += rng.choice(WS) * rng.randrange(1, 4)
        if rng.random() < 0.6:
            s += rng.choice(["a", "word", "Hello", "x1", "!", "中文", "é", "'s", "--"])
    add(s)
for k in range(150):
    n = rng.choice([rng.randrange(10), rng.randrange(1000), rng.randrange(10 ** 6), rng.randrange(10 ** 12)])
    fmt = rng.choice(["{}", "{:,}", "{:.2f}", "{:e}", "${:,}", "{}%", "#{}", "{}th", "v{}.0.1", "+{}", "-{}"])
    add(rng.choice(["", "about ", " ", "N=", "x"]) + fmt.format(n) + rng.choice(["", ".", " items", "\n"]))
for s in ["0", "00", "000", "0000", "12345678901234567890", "١٢٣٤٥", "۱۲۳", "१२३४५", "１２３", "①②③",
          "3.14", "3,14", "1/2", "10^6", "²³¹", "Ⅳ", "〇一二三", "٣٫١٤"]:
    add(s)
    add(" " + s)
    add("a" + s + "b")
CONTR = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "''", "'"]
for k in range(120):
    add(rng.choice(["it", "I", "you", "THEY", "we", "o", " he", "Jack", "dogs", "", " "]) +
        rng.choice(CONTR) + rng.choice(["", " ", "s", " go", "'", "\n", "!"]) + rng.choice(CONTR))

# ---- random Unicode mixes ---------------------------------------------------

POOLS = [
    [chr(c) for c in range(0x20, 0x7F)],
    [chr(c) for c in range(0xA0, 0x180)],
    [chr(c) for c in range(0x370, 0x3FF)],
    [chr(c) for c in range(0x400, 0x4FF)],
    [chr(c) for c in range(0x590, 0x5FF)],
    [chr(c) for c in range(0x600, 0x6FF)],
    [chr(c) for c in range(0x900, 0x97F)],
    [chr(c) for c in range(0xE00, 0xE7F)],
    [chr(c) for c in range(0x1100, 0x11FF)],
    [chr(c) for c in range(0x300, 0x36F)],
    [chr(c) for c in range(0x2000, 0x206F)],
    [chr(c) for c in range(0x2100, 0x22FF)],
    [chr(c) for c in range(0x3040, 0x30FF)],
    [chr(c) for c in range(0x4E00, 0x4FFF)],
    [chr(c) for c in range(0xAC00, 0xAD00)],
    [chr(c) for c in range(0xFF00, 0xFFEF)],
    [chr(c) for c in range(0x1F300, 0x1F6FF)],
    [chr(c) for c in range(0x1F900, 0x1F9FF)],
    [chr(c) for c in range(0x1D400, 0x1D7FF)],
    [chr(c) for c in range(0x20000, 0x20100)],
    [chr(c) for c in range(0x0, 0x20)] + ["\x7f", "\u0085", "\ufeff", "\u00ad"],
    ["\u200d", "\ufe0f", "\U0001F3FB", "\U0001F3FF", "\u20e3", "\U000E0067"],
    [" ", " ", "\n", "\t", "  "],
    list("abcdefghijklmnopqrstuvwxyz0123456789 .,;:'\"!?-"),
]
for k in range(1300):
    pools = rng.sample(POOLS, rng.randrange(1, 5))
    s = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randrange(1, 40)))
    add(s)

# ---- invalid UTF-8 ----------------------------------------------------------

BAD = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xc2", b"\xe2\x82", b"\xe0\x80\xaf", b"\xe0\x9f\xbf",
       b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x8f\xbf\xbf", b"\xf0\x9f", b"\xf0\x9f\x98", b"\xf4\x90\x80\x80",
       b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xff\xfe", b"\xc3\x28",
       b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28", b"\x80\x80\x80", b"\xe2\x82\xe2\x82\xac"]
for b in BAD:
    add(b)
    add(b"Hello " + b + b" world")
for k in range(200):
    base = rng.choice(SENTENCES).encode("utf-8")
    cut = rng.randrange(len(base) + 1)
    s = base[:cut] + rng.choice(BAD) + base[cut:]
    if rng.random() < 0.3:  # cut inside a character
        s = s[:rng.randrange(1, len(s) + 1)]
    add(s)

# ---- long strings -----------------------------------------------------------

for s in ["a" * 3000, "ab" * 2000, "7" * 3000, " " * 2000, "\n" * 500, "\t" * 300, "é" * 1000,
          "中" * 1500, "😀" * 800, "-" * 2500, "=" * 1000, "'s" * 500, "ha" * 1200,
          "Supercalifragilisticexpialidocious" * 40, "x" + "y" * 5000 + "z",
          "Lorem ipsum " * 300, ". " * 800, "<|end|>" * 100, "<s>" * 200, "\u200b" * 300,
          "e\u0301" * 500, "\u1100\u1161" * 400, "0123456789" * 300,
          "https://example.com/" + "a/" * 600 + "?x=1"]:
    add(s)
for k in range(4):  # a few pages of prose (the references are slow on long words)
    start = rng.randrange(len(verses) - 80)
    add(" ".join(v.partition(" ")[2] for v in verses[start:start + rng.randrange(30, 80)]))

sys.stdout.write("\n".join(out) + "\n")
sys.stderr.write("%d strings\n" % len(out))
