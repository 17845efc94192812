#!/usr/bin/env python3
"""check_same.py — the C tokenizer against BertTokenizerFast, line by line.

    check_same.py [--bin BUILD/bench/bench_tokenizer | --cli BUILD/distilbert] [--max-lines N] [FILE ...]

The C side is the bench program in --dump mode (it needs only libdistilbert.a: `make -C bench
tokenizer-bin`), or with --cli the `distilbert tokenize` command; both print ids and offsets.

Compares ids and offsets of every line, for the uncased vocabulary (lowercase + strip accents)
and the cased one. Without FILEs it uses the benchmark's corpus (wikitext-2 valid, SST-2 dev),
the first lines of the Brown corpus and of SST-2 train, plus a set of hand-written edge cases
(accents, CJK, controls, combining marks, emoji, long words, special tokens in the text), and
then a tokenizer.json with added tokens of every kind on part of the same lines.
Exits 1 on the first few mismatches (printed), 0 when everything matches.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

from transformers import BertTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EDGE = [
    "Héllo, wörld! 北京 x",
    "ÅÄÖ åäö ÀÉÎÕÜ ǅ ß ẞ İstanbul ΣΑΣ ς",
    "e\u0301 a\u0308\u0323 \u0041\u030a\u0301 x\u0331\u0300\u0316",
    "tab\there\x0bvt\x0cff\x1cfs\u2028ls\u00a0nbsp\u3000ideo\u200bzw\ufeffbom",
    "ctrl\x01\x02\x7f\x9f del \ufffd repl \u00ad shy",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "日本語のテキスト、한국어 텍스트。中文，标点！",
    "a" * 99 + " " + "b" * 100 + " " + "c" * 101 + " " + "é" * 101,
    "[CLS] hello [SEP] [MASK] x[MASK]y [PAD][UNK] [unused0] [cls]",
    "don't can't won't -- ... ?! $3.50 100% a/b c\\d e_f {g} <h> @i #j ^k ~l `m` |n|",
    "   leading and trailing spaces   ",
    "",
    " ",
    "ǈ ǋ ǲ Ⅷ ⅷ Ⓐ ﬁ ﬃ ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
    "Ωmega K Å ﬀ \u1e9e \u0130 \u0049\u0307",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    "\U00020000\U0002a6df\U0002b920 \U0002b820 \U0001d400 \U000e0001",
    "Ḁ ḁ ẛ̣ ṩ ǖ ǘ ḉ ṏ ø đ ł ı ŀ",
    "١٢٣ العربية עברית हिन्दी ไทย ქართული",
    "x\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a y",
]


def corpus_lines(max_lines):
    out = []
    with gzip.open(os.path.join(ROOT, "data/corpus/wikitext-2-valid.txt.gz"), "rt",
                   encoding="utf-8") as f:
        out += [l.rstrip("\n") for l in f][:max_lines]
    with open(os.path.join(ROOT, "data/sst2/dev.tsv"), encoding="utf-8") as f:
        out += [l.rstrip("\n").split("\t")[0] for l in f][1:]
    with gzip.open(os.path.join(ROOT, "data/corpus/brown.txt.gz"), "rt", encoding="utf-8") as f:
        for i, l in enumerate(f):
            if i >= max_lines:
                break
            out.append(l.rstrip("\n"))
    with gzip.open(os.path.join(ROOT, "data/sst2/train.tsv.gz"), "rt", encoding="utf-8") as f:
        for i, l in enumerate(f):
            if i > max_lines:
                break
            if i:
                out.append(l.rstrip("\n").split("\t")[0])
    return out


def run_c(binary, cli, vocab, cased, lines):
    """ids and offsets of each line from the C side; vocab is a vocab.txt or a tokenizer.json."""
    data = "".join(l + "\n" for l in lines).encode("utf-8", "surrogatepass")
    if cli:
        flag = "--tokenizer" if vocab.endswith(".json") else "--vocab"
        cmd = [cli, "tokenize", flag, vocab]
        p = subprocess.run(cmd + (["--cased"] if cased else []), input=data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    else:
        with tempfile.NamedTemporaryFile(suffix=".txt") as f:
            f.write(data)
            f.flush()
            cmd = [binary, "--vocab", vocab, "--input", f.name, "--dump"]
            p = subprocess.run(cmd + (["--cased"] if cased else []),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
    return [json.loads(l) for l in p.stdout.decode("utf-8").splitlines()]


def compare(name, hf, got, lines):
    """Prints the first mismatches and a summary line; returns the number of lines that differ."""
    ref = hf.encode_batch(lines)
    if len(got) != len(lines):
        print("%s: %d outputs for %d lines" % (name, len(got), len(lines)))
        return max(1, len(lines))
    n_bad = 0
    for i, (r, g) in enumerate(zip(ref, got)):
        ro = [list(o) for o in r.offsets]
        if r.ids != g["ids"] or ro != g["offsets"]:
            n_bad += 1
            if n_bad <= 5:
                print("%s line %d differs: %r" % (name, i, lines[i][:200]))
                print("   HF ids %s\n    C ids %s" % (r.ids[:40], g["ids"][:40]))
                print("   HF offsets %s\n    C offsets %s" % (ro[:20], g["offsets"][:20]))
    tokens = sum(len(r.ids) for r in ref)
    print("%s: %d lines, %d tokens, %d differ" % (name, len(lines), tokens, n_bad))
    return n_bad


# Added tokens of both kinds (matched in the raw or in the normalized text), with single_word,
# lstrip and rstrip, more than 8 distinct first characters: saved in a tokenizer.json.
ADDED = ["hello", "the king", "Zebra", "new york", "qq", "x1", "<eos>", "@@", "ü", "北京", "ab",
         "cd", "ef", "gh", "ij", "kl"]
ADDED_LINES = [
    "hello the king went to new york with a Zebra qq x1 <eos> @@ ü 北京 abcdef ab cd ef gh ij kl "
    "<sp> x <sp>y",
    "HELLO THE KING ZEBRA Ü",
    "xhello hellox the  king hello-there (qq) x1x [x1] <eos><eos> @@@ abab",
]


def check_added(binary, cli, lines):
    from tokenizers import AddedToken
    vocab = os.path.join(ROOT, "data/vocab/bert-base-uncased/vocab.txt")
    hf = BertTokenizerFast(vocab_file=vocab).backend_tokenizer
    hf.add_tokens([AddedToken(w, normalized=i % 2 == 0, single_word=i % 3 == 0, lstrip=i % 4 == 1,
                              rstrip=i % 5 == 2) for i, w in enumerate(ADDED)])
    hf.add_special_tokens([AddedToken("<sp>", normalized=False, lstrip=True, rstrip=True)])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokenizer.json")
        hf.save(path)
        got = run_c(binary, cli, path, False, lines)
    return compare("added tokens (tokenizer.json)", hf, got, lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build/bench/bench_tokenizer"),
                    help="the bench program (run in --dump mode)")
    ap.add_argument("--cli", help="use `CLI tokenize` (e.g. build/distilbert) instead")
    ap.add_argument("--max-lines", type=int, default=4000)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()

    if a.files:
        lines = []
        for path in a.files:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                lines += [l.rstrip("\n") for l in f][: a.max_lines]
    else:
        lines = corpus_lines(a.max_lines) + EDGE
    # the CLI reads one text per line: a text cannot hold a newline
    lines = [l.replace("\n", " ").replace("\r", " ") for l in lines]

    bad = 0
    for name, cased in (("bert-base-uncased", False), ("bert-base-cased", True)):
        vocab = os.path.join(ROOT, "data/vocab", name, "vocab.txt")
        hf = BertTokenizerFast(vocab_file=vocab, do_lower_case=not cased).backend_tokenizer
        bad += compare(name, hf, run_c(a.bin, a.cli, vocab, cased, lines), lines)
    if not a.files:
        bad += check_added(a.bin, a.cli, lines[:3000] + EDGE + ADDED_LINES)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
