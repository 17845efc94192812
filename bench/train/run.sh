#!/usr/bin/env bash
# run.sh — the training benchmark: full training steps (forward with dropout, cross-entropy,
# backward, clipping, AdamW) of distilbert.c against PyTorch on the same checkpoint, batch and
# thread count, 1 and 2 threads, pinned, interleaved, medians, measured in one run. Checks first
# that one step from the same weights gives the same loss on both sides. Prints markdown tables
# and writes bench/results/train.json. See bench/train/train_bench.py for the method.
#
#   bench/train/run.sh [--quick]        (or: make bench, make -C bench train / train-quick)
#
# Default: all-MiniLM-L6-v2 with a fresh 2-label head at (batch, seq) = (8,128) (32,128), and the
# base-size DistilBERT of bench/model at (8,128) (~4-5 minutes on 2 cores, more under load).
# --quick: MiniLM (8,128) and DistilBERT-base (4,128), fewer steps (< 2 minutes), for development.
#
# Environment:
#   BUILD    library build directory (default: <repo>/build); the checkpoints are made once into
#            $BUILD/bench/model (bench/model/prepare.py) and $BUILD/bench/train (bench/train/prepare.py)
#   PYTHON   the oracle venv's interpreter (default: <repo>/.venv/bin/python): torch, transformers
#   RESULTS  the JSON to write (default: bench/results/train.json; --quick writes
#            $BUILD/bench/train-quick.json unless RESULTS is set, leaving the results alone)
# Only the PyTorch peer's process gets OPENBLAS_CORETYPE=SkylakeX, OMP_WAIT_POLICY=PASSIVE and
# tcmalloc (bench/model/bench.py's peer_env); distilbert.c runs in the environment as it is.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
QUICK=()
DEFAULT_RESULTS=$ROOT/bench/results/train.json
for arg in "$@"; do
    case $arg in
        --quick) QUICK=(--quick); DEFAULT_RESULTS=$BUILD/bench/train-quick.json ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
done
RESULTS=${RESULTS:-$DEFAULT_RESULTS}
cd "$ROOT"

# 1. The library (if stale) and the driver.
make --no-print-directory -C "$ROOT/bench" BUILD="$BUILD" train-bin >&2

if ! "$PYTHON" -c "import torch, transformers" 2> /dev/null; then
    echo "run.sh: $PYTHON lacks torch or transformers: run scripts/install-deps.sh" >&2
    exit 1
fi

# 2. The checkpoints (kept between runs): bench/model's base-size DistilBERT (with its ONNX files,
#    shared with the model benchmark) and MiniLM with a fresh head.
"$PYTHON" "$ROOT/bench/model/prepare.py" --dir "$BUILD/bench/model" > /dev/null
"$PYTHON" "$HERE/prepare.py" --dir "$BUILD/bench/train" > /dev/null

# 3. The check, then both implementations, interleaved.
"$PYTHON" "$HERE/train_bench.py" --bench-train "$BUILD/bench/bench_train" --data-model "$BUILD/bench/model" \
    --data-train "$BUILD/bench/train" --python "$PYTHON" --results "$RESULTS" "${QUICK[@]}" \
    --command "bench/train/run.sh${QUICK:+ --quick}"
echo "reproduce: cd $ROOT && bench/train/run.sh ${QUICK[*]:-}  (or: make -C bench train${QUICK:+-quick}; make bench runs it too)"
