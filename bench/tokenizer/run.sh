#!/usr/bin/env bash
# run.sh — tokenizer throughput: distilbert.c against Hugging Face tokenizers (Rust), one thread,
# same lines, same vocabulary, measured in the same run. Prints a markdown table and writes
# bench/results/tokenizer.json.
#
#   bench/tokenizer/run.sh                      (or: make bench, make -C bench tokenizer)
#
# Environment:
#   BUILD      library build directory (default: <repo>/build)
#   PYTHON     the interpreter with tokenizers + transformers (default: <repo>/.venv/bin/python)
#   VOCAB      vocab.txt (default: data/vocab/bert-base-uncased/vocab.txt)
#   REPS       timed repetitions, the median is reported (default 10); WARMUP rounds (default 2)
#   BENCH_CPU  the core to pin both programs to with taskset (default: the last allowed one;
#              "none" to not pin)
#
# Input (fixed): the lines of data/corpus/wikitext-2-valid.txt.gz followed by the sentences of
# data/sst2/dev.tsv, whitespace-only lines dropped (3333 lines, ~1.2 MB).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
VOCAB=${VOCAB:-$ROOT/data/vocab/bert-base-uncased/vocab.txt}
REPS=${REPS:-10}
WARMUP=${WARMUP:-2}
RESULTS=$ROOT/bench/results/tokenizer.json
cd "$ROOT"

# 1. Build the library (if stale) and the bench program.
make --no-print-directory -C "$ROOT/bench" BUILD="$BUILD" tokenizer-bin >&2
BIN=$BUILD/bench/bench_tokenizer

# 2. The fixed input.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
INPUT=$TMP/input.txt
{
    gzip -dc data/corpus/wikitext-2-valid.txt.gz
    tail -n +2 data/sst2/dev.tsv | cut -f1
} | grep -v '^[[:space:]]*$' > "$INPUT" || true

# 3. Pin to one core when taskset can.
PIN=()
if [ "${BENCH_CPU:-}" != none ] && command -v taskset > /dev/null; then
    cpu=${BENCH_CPU:-$(taskset -cp $$ 2> /dev/null | sed 's/.*: //; s/.*[,-]//')}
    if [ -n "$cpu" ] && taskset -c "$cpu" true 2> /dev/null; then PIN=(taskset -c "$cpu"); fi
fi

# 4. Both, one after the other.
"${PIN[@]}" "$BIN" --vocab "$VOCAB" --input "$INPUT" --reps "$REPS" --warmup "$WARMUP" \
    > "$TMP/c.json"
"${PIN[@]}" "$PYTHON" "$HERE/bench_hf.py" --vocab "$VOCAB" --input "$INPUT" --reps "$REPS" \
    --warmup "$WARMUP" --c-json "$TMP/c.json" > "$TMP/hf.json"

# 5. Table and results file.
mkdir -p "$(dirname "$RESULTS")"
PIN_DESC="${PIN[*]:-}" INPUT_SHA=$(sha256sum "$INPUT" | cut -d' ' -f1) \
"$PYTHON" - "$TMP/c.json" "$TMP/hf.json" "$RESULTS" "$ROOT" << 'EOF'
import json, os, platform, subprocess, sys, time
c = json.load(open(sys.argv[1]))
hf = json.load(open(sys.argv[2]))
results, root = sys.argv[3], sys.argv[4]
base = hf["encode_batch"]["mb_per_s"]
rows = [("distilbert.c `dbt_encode` (per line)", c["mb_per_s"], c["tokens_per_s"]),
        ("HF tokenizers `encode_batch` (1 thread)", hf["encode_batch"]["mb_per_s"],
         hf["encode_batch"]["tokens_per_s"])]
if "encode" in hf:
    rows.append(("HF tokenizers `encode` (per line)", hf["encode"]["mb_per_s"],
                 hf["encode"]["tokens_per_s"]))
cpu = ""
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
except OSError:
    pass
pin = os.environ.get("PIN_DESC", "")
print()
print("Tokenizer throughput, one thread (%s), %d lines, %.2f MB, %d tokens, median of %d runs"
      % (pin or "not pinned", c["lines"], c["bytes"] / 1e6, c["tokens"], c["reps"]))
print()
print("| implementation | MB/s | tokens/s | ratio vs HF encode_batch |")
print("|---|---:|---:|---:|")
for name, mbs, tps in rows:
    print("| %s | %.2f | %s | %.2fx |" % (name, mbs, format(int(round(tps)), ","), mbs / base))
print()
if c["tokens"] != hf["tokens"]:
    print("WARNING: token counts differ: distilbert.c %d, HF %d" % (c["tokens"], hf["tokens"]))
out = {
    "benchmark": "tokenizer",
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "command": "bench/tokenizer/run.sh  (REPS=%d WARMUP=%d)" % (c["reps"], c["warmup"]),
    "machine": {"cpu": cpu, "nproc": os.cpu_count(), "pinned": pin or None,
                "python": platform.python_version()},
    "input": {"what": "data/corpus/wikitext-2-valid.txt.gz lines + data/sst2/dev.tsv sentences, "
                      "whitespace-only lines dropped",
              "sha256": os.environ.get("INPUT_SHA"), "lines": c["lines"], "bytes": c["bytes"]},
    "vocab": os.path.relpath(c["vocab"], root),
    "tokens": c["tokens"],
    "tokens_match": c["tokens"] == hf["tokens"],
    "distilbert_c": {k: c[k] for k in ("times_s", "median_s", "mb_per_s", "tokens_per_s")},
    "hf_tokenizers": {"version": hf["impl"], "encode_batch": hf["encode_batch"],
                      "encode": hf.get("encode")},
    "ratio_vs_hf_encode_batch": round(c["mb_per_s"] / base, 3),
    "ratio_vs_hf_encode": round(c["mb_per_s"] / hf["encode"]["mb_per_s"], 3) if "encode" in hf else None,
}
with open(results, "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print("wrote %s" % os.path.relpath(results, root))
EOF
echo "reproduce: cd $ROOT && REPS=$REPS WARMUP=$WARMUP bench/tokenizer/run.sh   (or: make bench)"
