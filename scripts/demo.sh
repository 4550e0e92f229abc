#!/usr/bin/env bash
# The main job on embedded defaults: a label mistake caught before any model loads, a plain
# training run whose findings say what the model cannot do and how to fix it, a small real
# tune of the packaged MiniLM with that fix, then the best model predicting new sentences.
# LABELWISE and PYTHON name the executables (default: the repository's .venv); DEMO_OUT the
# output directory of the tune (default runs/demo; the plain run goes to DEMO_OUT-plain).
set -u
cd "$(dirname "$0")/.."
LW=${LABELWISE:-.venv/bin/labelwise}
PY=${PYTHON:-.venv/bin/python}
OUT=${DEMO_OUT:-runs/demo}
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

echo
echo "Three classes, and 'neutral' is rare. A plain run first: what can its model not do?"
say labelwise train --config $DEMO/demo.yaml --output-dir "$OUT-plain" --overwrite --no-report
$LW train --config $DEMO/demo.yaml --output-dir "$OUT-plain" --overwrite --no-report || exit 1

echo
echo "The fixes the findings name: class weights and more epochs. A small search with them:"
say labelwise tune --config $DEMO/demo.yaml --set train.class_weights=balanced --set train.epochs=4 --output-dir "$OUT" --overwrite
$LW tune --config $DEMO/demo.yaml --set train.class_weights=balanced --set train.epochs=4 \
    --output-dir "$OUT" --overwrite || exit 1

say labelwise predict "$OUT/best" $DEMO/sentences.csv --output "$OUT/predictions.csv"
$LW predict "$OUT/best" $DEMO/sentences.csv --output "$OUT/predictions.csv" || exit 1
DEMO_OUT="$OUT" $PY - <<'PY'
import json
import os

import pandas as pd

out = os.environ["DEMO_OUT"]
frame = pd.read_csv(f"{out}/predictions.csv")
for row in frame.itertuples():
    print(f"  {row.label:<9} {row.text}")


def recall(path, name="neutral"):
    rows = json.load(open(path))["valid"]["per_class"]
    return next(r["recall"] for r in rows if r["label"] == name)


print(f"\nvalidation recall of 'neutral': {recall(f'{out}-plain/metrics.json'):.2f} plain, "
      f"{recall(f'{out}/best/metrics.json'):.2f} tuned with class weights and 4 epochs")
PY
echo
echo "demo finished: the best model is in $OUT/best (trials: $OUT/trials.csv)"
