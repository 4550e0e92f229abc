#!/usr/bin/env bash
# The main job on embedded defaults, as far as it exists: read real labels, catch the
# mistake a user makes, then run the corrected call.
set -u
cd "$(dirname "$0")/.."
LW=.venv/bin/labelwise
DEMO=src/labelwise/demo
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

echo "Demo data: $(wc -l < $DEMO/train.jsonl) GoEmotions comments (Apache-2.0, see $DEMO/NOTICE),"
echo "labelled by sentiment. We believe the task is binary (positive / negative)."

say labelwise inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --label-column sentiment --task binary
$LW inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --label-column sentiment --task binary
code=$?
echo "(exit code $code: caught before any model was loaded)"
[ "$code" -eq 2 ] || { echo "demo: expected exit code 2"; exit 1; }

say labelwise inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --test $DEMO/test.jsonl --label-column sentiment
$LW inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --test $DEMO/test.jsonl --label-column sentiment || exit 1

say labelwise inspect $DEMO/train.jsonl --label-column labels
$LW inspect $DEMO/train.jsonl --label-column labels
code=$?
[ "$code" -le 2 ] || exit 1
echo
echo "demo finished"
