#!/usr/bin/env bash
# The main job, as far as the project has come: tokenize real SST-2 sentences with the
# bert-base-uncased vocabulary, show tokens and offsets, and decode them back.
# (The knowledge-distillation pipeline — pretrain a teacher, distill, fine-tune, report —
# replaces this as it lands.)
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
BIN=$BUILD/distilbert
VOCAB=data/vocab/bert-base-uncased/vocab.txt
echo "== distilbert tokenize: 5 SST-2 dev sentences"
sed -n 2,6p data/sst2/dev.tsv | cut -f1 > /tmp/dbt-demo.txt
$BIN tokenize --vocab $VOCAB < /tmp/dbt-demo.txt | tee /tmp/dbt-demo.jsonl | cut -c1-160
echo "== distilbert decode (round trip)"
$BIN decode --vocab $VOCAB --skip-special-tokens < /tmp/dbt-demo.jsonl
echo "== throughput on all 872 dev sentences"
tail -n +2 data/sst2/dev.tsv | cut -f1 > /tmp/dbt-demo-all.txt
s=$(date +%s.%N); $BIN tokenize --vocab $VOCAB < /tmp/dbt-demo-all.txt > /tmp/dbt-demo-all.jsonl; e=$(date +%s.%N)
echo "$(wc -l < /tmp/dbt-demo-all.jsonl) sentences in $(python3 -c "print(round($e - $s, 3))") s (process start and vocab load included)"
