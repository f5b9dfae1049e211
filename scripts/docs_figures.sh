#!/usr/bin/env bash
# The attention figures of the README and the docs, drawn from a trained checkpoint on sentences
# the project wrote itself (docs/figures/sentences.de; no corpus text is ever committed):
#
#   bash scripts/docs_figures.sh runs/<run>/checkpoints/best.pt
#
# The committed figures come from `python train.py +experiment=bahdanau_best seed=1` (German ->
# English, Multi30k). Writes docs/images/attention.png (the README's: the first sentence) and
# docs/images/attention_examples.png (the docs' attention page: all of them).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: bash scripts/docs_figures.sh CHECKPOINT (a German -> English model, e.g. +experiment=bahdanau_best)" >&2
  exit 2
fi
PYTHON=${PYTHON:-python}
system="bahdanau_best=$1"
sentences=docs/figures/sentences.de
lines=$(wc -l < "$sentences")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
$PYTHON -m nmt.cli.attention --system "$system" --src "$sentences" --lines 1 --target translation --output "$scratch/attention"
$PYTHON -m nmt.cli.attention --system "$system" --src "$sentences" --lines $(seq 1 "$lines") --target translation \
  --output "$scratch/attention_examples"
mkdir -p docs/images
cp "$scratch/attention.png" "$scratch/attention_examples.png" docs/images/
echo "wrote docs/images/attention.png docs/images/attention_examples.png"
# the explorer's picture: needs selenium and Debian's chromium and chromium-driver
$PYTHON scripts/explorer_screenshot.py --checkpoint "$1" --output docs/images/explorer.png
