#!/usr/bin/env bash
# run.sh — the model benchmark: distilbert.c's forward pass (fp32, and --dtype bf16 / int8) against
# PyTorch and ONNX Runtime (fp32, and int8 dynamic quantization: the peer of our int8) on the same
# base-size DistilBERT checkpoint and the same inputs, 1 and 2 threads, pinned, interleaved,
# medians, measured in one run; then the accuracy of bf16/int8 on MiniLM embeddings of real text and
# on SST-2 dev with a MiniLM classifier fine-tuned once by distilbert finetune (bench/model/classifier.py).
# Prints markdown tables and writes bench/results/model.json. See bench/model/bench.py for the method.
#
#   bench/model/run.sh [--quick]        (or: make bench, make -C bench model / model-quick)
#
# --quick: 3 shapes and fewer rounds, for development (< 3 minutes); the default measures
# (batch, seq) = (1,16) (1,128) (1,512) (8,128) (32,128) (< 20 minutes with `make bench`).
#
# Environment:
#   BUILD    library build directory (default: <repo>/build); the checkpoints and ONNX files are
#            made once into $BUILD/bench/model (bench/model/prepare.py)
#   PYTHON   the oracle venv's interpreter (default: <repo>/.venv/bin/python): torch (Debian),
#            transformers, onnxruntime, onnx
#   RESULTS  the JSON to write (default: bench/results/model.json; --quick writes
#            $BUILD/bench/model-quick.json unless RESULTS is set, leaving the results alone)
# Only the PyTorch peer's process gets OPENBLAS_CORETYPE=SkylakeX, OMP_WAIT_POLICY=PASSIVE and
# tcmalloc; distilbert.c runs in the environment as it is.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
QUICK=()
DEFAULT_RESULTS=$ROOT/bench/results/model.json
for arg in "$@"; do
    case $arg in
        --quick) QUICK=(--quick); DEFAULT_RESULTS=$BUILD/bench/model-quick.json ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
done
RESULTS=${RESULTS:-$DEFAULT_RESULTS}
cd "$ROOT"

# 1. The library (if stale), the driver and the roof program.
make --no-print-directory -C "$ROOT/bench" BUILD="$BUILD" model-bin >&2

if ! "$PYTHON" -c "import torch, transformers, onnx, onnxruntime" 2> /dev/null; then
    echo "run.sh: $PYTHON lacks torch, transformers, onnx or onnxruntime: run scripts/install-deps.sh" >&2
    exit 1
fi

# 2. The checkpoints, the ONNX export and its int8 quantization (kept between runs).
"$PYTHON" "$HERE/prepare.py" --dir "$BUILD/bench/model" > /dev/null
#    The fine-tuned classifier of the accuracy section (MiniLM on SST-2; skipped without MiniLM).
"$PYTHON" "$HERE/classifier.py" prepare --cli "$BUILD/distilbert" --dir "$BUILD/bench/model" "${QUICK[@]}" > /dev/null

# 3. Roof, then every implementation, interleaved.
"$PYTHON" "$HERE/bench.py" --bench-model "$BUILD/bench/bench_model" --roof "$BUILD/bench/roof" \
    --data "$BUILD/bench/model" --python "$PYTHON" --results "$RESULTS" "${QUICK[@]}" \
    --command "bench/model/run.sh${QUICK:+ --quick}"
echo "reproduce: cd $ROOT && bench/model/run.sh ${QUICK[*]:-}  (or: make bench)"
