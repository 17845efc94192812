#!/usr/bin/env python3
"""bench_hf.py — the peer: Hugging Face `tokenizers` (Rust) on one thread, same lines, same vocab.

    bench_hf.py --input FILE [--vocab FILE] [--reps N] [--warmup N] [--c-json FILE]

The tokenizer is BertTokenizerFast(vocab_file=...).backend_tokenizer — exactly the oracle the C
tokenizer is tested against (BertNormalizer, BertPreTokenizer, WordPiece, [CLS] A [SEP]).
Lines are split on b"\\n" as bench_tokenizer.c splits them. Timed paths:
  - encode_batch(lines)      HF's fastest path (one call, Rust loop; RAYON_NUM_THREADS=1 and
                             TOKENIZERS_PARALLELISM=false keep it on one thread);
  - [encode(l) for l in ...] one call per line, a secondary figure.
Prints one JSON object on stdout. With --c-json (the C bench's output), checks that the total
token counts are equal and prints a WARNING line on stderr if not.
"""
import os

# Before importing tokenizers: one thread, no rayon pool growing behind our back.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from transformers import BertTokenizerFast  # noqa: E402


def read_lines(path):
    data = open(path, "rb").read()
    parts = data.split(b"\n")
    if data.endswith(b"\n"):
        parts.pop()
    return [p.decode("utf-8") for p in parts], sum(len(p) for p in parts)


def timed(fn, reps, warmup):
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--vocab", default="data/vocab/bert-base-uncased/vocab.txt")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--c-json", help="output of bench_tokenizer, to compare token counts")
    ap.add_argument("--no-encode", action="store_true", help="skip the per-call encode figure")
    a = ap.parse_args()

    lines, nbytes = read_lines(a.input)
    tok = BertTokenizerFast(vocab_file=a.vocab).backend_tokenizer  # a tokenizers.Tokenizer

    def batch():
        return tok.encode_batch(lines, add_special_tokens=True)

    def per_call():
        enc = tok.encode
        return [enc(l, add_special_tokens=True) for l in lines]

    result = {
        "impl": "HF tokenizers %s (Rust) one thread" % tokenizers.__version__,
        "vocab": a.vocab,
        "input": a.input,
        "lines": len(lines),
        "bytes": nbytes,
        "reps": a.reps,
        "warmup": a.warmup,
    }
    encs, times = timed(batch, a.reps, a.warmup)
    tokens = sum(len(e.ids) for e in encs)
    del encs
    med = statistics.median(times)
    result["tokens"] = tokens
    result["encode_batch"] = {
        "times_s": [round(t, 6) for t in times],
        "median_s": round(med, 6),
        "mb_per_s": round(nbytes / med / 1e6, 3),
        "tokens_per_s": round(tokens / med, 1),
    }
    if not a.no_encode:
        encs, times = timed(per_call, a.reps, a.warmup)
        tokens_e = sum(len(e.ids) for e in encs)
        del encs
        med = statistics.median(times)
        result["encode"] = {
            "times_s": [round(t, 6) for t in times],
            "median_s": round(med, 6),
            "mb_per_s": round(nbytes / med / 1e6, 3),
            "tokens_per_s": round(tokens_e / med, 1),
        }
        if tokens_e != tokens:
            print("WARNING: HF encode and encode_batch disagree on the token count: %d vs %d"
                  % (tokens_e, tokens), file=sys.stderr)
    if a.c_json:
        with open(a.c_json) as f:
            c = json.load(f)
        result["c_tokens"] = c["tokens"]
        result["tokens_match"] = c["tokens"] == tokens
        if c["tokens"] != tokens or c["lines"] != len(lines) or c["bytes"] != nbytes:
            print("WARNING: token counts differ: distilbert.c %d tokens (%d lines, %d bytes), "
                  "HF tokenizers %d tokens (%d lines, %d bytes)"
                  % (c["tokens"], c["lines"], c["bytes"], tokens, len(lines), nbytes),
                  file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
