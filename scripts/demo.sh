#!/usr/bin/env bash
# The main job: the DistilBERT recipe at a scale this machine runs in about a quarter of an hour,
# on data that ships in the repo.
#
#   (a) train a WordPiece vocabulary and pre-train a small BERT teacher (masked LM) on the English
#       corpus (Brown + WikiText-2 valid);
#   (b) distill a half-depth DistilBERT student from it with the triple loss (soft targets,
#       masked LM, hidden-state cosine), initialized from one teacher layer out of two;
#   (c) fine-tune the teacher, the student, and a same-size student pre-trained for the same steps
#       without a teacher (the control) on SST-2;
#   (d) report parameters, file size, latency in our engine, SST-2 dev accuracy and the share of the
#       teacher's accuracy kept — the paper's Tables 1 and 3 in small — as markdown, JSON and SVG.
#
#   scripts/demo.sh [BUILD_DIR] [--ablation]      (make demo; make demo DEMO_ARGS=--ablation)
#
# --ablation adds the rows of the paper's Table 4: the student distilled without L_ce, without
# L_cos, without L_mlm, and from a random initialization instead of the teacher's layers.
# Environment: DEMO_OUT (out/demo), DEMO_SCALE (1.0; multiplies every step count), DEMO_THREADS.
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
T_TEACHER=$(steps 1500)
T_DISTILL=$(steps 800)
T_FINETUNE=$(steps 250)
CORPUS=(--corpus data/corpus/brown.txt.gz --corpus data/corpus/wikitext-2-valid.txt.gz)
PROG=()
[ -t 2 ] || PROG=(--no-progress)
mkdir -p "$OUT"
start=$(date +%s)
stage() { printf '\n== [%4ds] %s\n' $(( $(date +%s) - start )) "$*" >&2; }

# The teacher: BERT, 4 layers × 256; the students: DistilBERT, 2 layers × 256.
ARCH=(--layers 4 --dim 256 --heads 4 --hidden-dim 1024 --max-positions 128)
TRAIN=(--max-length 64 --batch-size 32 --threads "$THREADS" "${PROG[@]}" --log-every 50)

stage "(a) WordPiece vocabulary (8000) on the corpus"
"$BIN" vocab "${CORPUS[@]}" --size 8000 --out "$OUT/tokenizer" >&2

stage "(a) pre-training the BERT teacher: $T_TEACHER steps of masked LM"
"$BIN" pretrain --out "$OUT/teacher" --tokenizer "$OUT/tokenizer" "${CORPUS[@]}" "${ARCH[@]}" "${TRAIN[@]}" \
    --lr 1e-3 --warmup-ratio 0.05 --max-steps "$T_TEACHER"

distill() { # name, extra flags...
    local name=$1; shift
    "$BIN" distill --teacher "$OUT/teacher" --out "$OUT/$name" "${CORPUS[@]}" --student-layers 2 "${TRAIN[@]}" \
        --lr 1e-3 --warmup-ratio 0.05 --max-steps "$T_DISTILL" --temperature 2 "$@"
}
stage "(b) distilling the student (2 layers, from teacher layers 0 and 3): $T_DISTILL steps, triple loss"
distill student --alpha-ce 5 --alpha-mlm 2 --alpha-cos 1

stage "(c) the control: the same student, pre-trained for $T_DISTILL steps without a teacher"
"$BIN" pretrain --out "$OUT/control" --tokenizer "$OUT/tokenizer" "${CORPUS[@]}" --model-type distilbert \
    --layers 2 --dim 256 --heads 4 --hidden-dim 1024 --max-positions 128 "${TRAIN[@]}" \
    --lr 1e-3 --warmup-ratio 0.05 --max-steps "$T_DISTILL"

ROWS=(teacher student control)
if [ "$ABLATION" = 1 ]; then
    stage "(b') ablation: without L_ce, without L_cos, without L_mlm, random initialization"
    distill abl-no-ce --alpha-ce 0 --alpha-mlm 2 --alpha-cos 1
    distill abl-no-cos --alpha-ce 5 --alpha-mlm 2 --alpha-cos 0
    distill abl-no-mlm --alpha-ce 5 --alpha-mlm 0 --alpha-cos 1
    distill abl-random-init --alpha-ce 5 --alpha-mlm 2 --alpha-cos 1 --from-scratch
    ROWS+=(abl-no-ce abl-no-cos abl-no-mlm abl-random-init)
fi

for m in "${ROWS[@]}"; do
    stage "(c) fine-tuning $m on SST-2: $T_FINETUNE steps"
    "$BIN" finetune --task classify --model "$OUT/$m" --train data/sst2/train.tsv.gz --dev data/sst2/dev.tsv \
        --out "$OUT/$m-sst2" --epochs 1 --max-steps "$T_FINETUNE" --batch-size 32 --lr 1e-3 --warmup-ratio 0.1 \
        --max-length 64 --seed 7 --threads "$THREADS" "${PROG[@]}" 2> "$OUT/$m-sst2.log"
done

stage "(d) evaluation and latency (one thread, the 872 dev sentences four times, best of 3)"
for _ in 1 2 3 4; do tail -n +2 data/sst2/dev.tsv | cut -f1; done > "$OUT/dev-sentences.txt"  # 4 × 872: model load is not what we time
: > "$OUT/measurements.jsonl"
for m in "${ROWS[@]}"; do
    metrics=$("$BIN" eval --task classify --model "$OUT/$m-sst2" --data data/sst2/dev.tsv)
    best=""
    for _ in 1 2 3; do
        t0=$(date +%s.%N)
        "$BIN" classify --model "$OUT/$m-sst2" --threads 1 --batch-size 32 < "$OUT/dev-sentences.txt" > /dev/null
        t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(t if not b else min(t, float(b)))")
    done
    printf '{"model":"%s","metrics":%s,"seconds":%s,"bytes":%s}\n' "$m" "$metrics" "$best" \
        "$(stat -c %s "$OUT/$m-sst2/model.safetensors")" >> "$OUT/measurements.jsonl"
done
python3 scripts/demo_report.py "$OUT" "$(( $(date +%s) - start ))"
stage "done: $OUT/report.md, $OUT/report.svg; the student: $OUT/student-sst2 (distilbert classify and transformers load it)"
