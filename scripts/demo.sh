#!/usr/bin/env bash
# The main job on embedded defaults: a label mistake caught before any model loads, then a
# small real tune of the packaged MiniLM, then the best model predicting new sentences.
set -u
cd "$(dirname "$0")/.."
LW=.venv/bin/labelwise
DEMO=src/labelwise/demo
export HF_HUB_OFFLINE=1
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

echo "Demo data: $(wc -l < $DEMO/train.jsonl) GoEmotions comments for training (Apache-2.0, see"
echo "$DEMO/NOTICE), labelled by sentiment. We believe the task is binary (positive / negative)."

say labelwise tune --config $DEMO/demo.yaml --task binary
TIMEFORMAT='(caught in %R s, before any model was loaded or any file written)'
time { $LW tune --config $DEMO/demo.yaml --task binary; code=$?; }
echo "(exit code $code)"
[ "$code" -eq 2 ] || { echo "demo: expected exit code 2"; exit 1; }

say labelwise inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --test $DEMO/test.jsonl --label-column sentiment
$LW inspect $DEMO/train.jsonl --valid $DEMO/valid.jsonl --test $DEMO/test.jsonl \
    --label-column sentiment || exit 1

say labelwise tune --config $DEMO/demo.yaml --overwrite
$LW tune --config $DEMO/demo.yaml --overwrite || exit 1

say labelwise predict runs/demo/best $DEMO/sentences.csv --output runs/demo/predictions.csv
$LW predict runs/demo/best $DEMO/sentences.csv --output runs/demo/predictions.csv || exit 1
.venv/bin/python - <<'PY'
import pandas as pd
frame = pd.read_csv("runs/demo/predictions.csv")
for row in frame.itertuples():
    print(f"  {row.label:<9} {row.text}")
PY
echo
echo "demo finished: the best model is in runs/demo/best (trials: runs/demo/trials.csv)"
