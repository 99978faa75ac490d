#!/usr/bin/env python3
"""Builds the demo model's training data from text that Debian ships:

  bible-kjv      the King James Bible (public domain), via `bible -f`
  fortunes       the fortune-mod collections (/usr/share/games/fortunes;
                 freely redistributable, see the package's copyright file)
  dict-jargon    the Jargon File 4.4.7 (public domain)

and a share of chat-formatted examples made from the same text with
Phi-3's template, so that the model learns <|user|> / <|assistant|> turns
and to stop with <|end|>. Tokenizes everything with `zt tokenize` (the
Phi-3 vocabulary) and writes OUT/train.bin and OUT/valid.bin (uint16 ids;
every 50th document held out), OUT/sources.json (sizes).

    python3 tools/prepare_demo_corpus.py ZT_BINARY VOCAB.gguf OUT_DIR
"""
import array
import gzip
import json
import os
import random
import re
import subprocess
import sys

BOS, EOT = 1, 32000  # <s>, <|endoftext|>


def kjv():
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True,
                          text=True, check=True).stdout
    chapters, verses = {}, []
    for line in text.splitlines():
        m = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        book, ch, v, body = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()
        chapters.setdefault((book, ch), []).append(body)
        verses.append((book, ch, v, body))
    docs = [" ".join(vs) for vs in chapters.values()]
    return docs, verses, len(text.encode())


def fortunes():
    root = "/usr/share/games/fortunes"
    docs, size = [], 0
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if "." in name or os.path.islink(path) or not os.path.isfile(path):
            continue
        raw = open(path, "rb").read()
        size += len(raw)
        for part in raw.decode("utf-8", "replace").split("\n%\n"):
            part = part.strip("%\n ")
            if 20 <= len(part) <= 2000:
                docs.append(part)
    return docs, size


def jargon():
    raw = gzip.open("/usr/share/dictd/jargon.dict.dz").read().decode("utf-8", "replace")
    entries = {}
    for block in re.split(r"\n(?=:[^:\n]+:)", raw):
        m = re.match(r":([^:\n]+):(.*)", block, re.S)
        if m:
            body = re.sub(r"\s+", " ", m.group(2)).strip()
            if len(body) > 40:
                entries[m.group(1).strip()] = body
    return entries, len(raw.encode())


def chat(user, assistant):
    return f"<|user|>\n{user}<|end|>\n<|assistant|>\n{assistant}<|end|>\n"


def main(zt, vocab, out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1126)
    bible_docs, verses, bible_size = kjv()
    fortune_docs, fortune_size = fortunes()
    jargon_entries, jargon_size = jargon()
    docs = bible_docs + fortune_docs + [f"{k}: {v}" for k, v in jargon_entries.items()]
    # chat-formatted examples, about a tenth of the documents
    for f in rng.sample(fortune_docs, min(3000, len(fortune_docs))):
        q = rng.choice(["Tell me a fortune.", "Say something wise.", "Give me a quote.",
                        "Tell me something funny.", "What do you think?"])
        docs.append(chat(q, f))
    for book, ch, v, body in rng.sample(verses, 3000):
        docs.append(chat(rng.choice([f"Quote {book} {ch}:{v}.", "Read me a verse.",
                                     "What does the Bible say?"]), body))
    for k in rng.sample(sorted(jargon_entries), min(1500, len(jargon_entries))):
        docs.append(chat(f"What is {k}?", jargon_entries[k]))
    rng.shuffle(docs)

    jsonl = os.path.join(out, "docs.jsonl")
    with open(jsonl, "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    res = subprocess.run([zt, "tokenize", vocab, "--no-bos", "--jsonl", jsonl],
                         capture_output=True, text=True, check=True)
    lines = res.stdout.splitlines()
    assert len(lines) == len(docs), (len(lines), len(docs))
    train, valid = array.array("H"), array.array("H")
    for i, line in enumerate(lines):
        ids = [BOS] + json.loads(line) + [EOT]
        (valid if i % 50 == 0 else train).extend(ids)
    train.tofile(open(os.path.join(out, "train.bin"), "wb"))
    valid.tofile(open(os.path.join(out, "valid.bin"), "wb"))
    info = {"documents": len(docs), "train_tokens": len(train), "valid_tokens": len(valid),
            "sources": {"bible-kjv (King James Version, public domain)": bible_size,
                        "fortunes (fortune-mod collections)": fortune_size,
                        "dict-jargon (Jargon File 4.4.7, public domain)": jargon_size}}
    json.dump(info, open(os.path.join(out, "sources.json"), "w"), indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
