#!/usr/bin/env bash
# The attention study of docs/results.md, end to end: Bahdanau et al. (2015) and Luong et al.
# (2015) compared on Multi30k de->en at an equal budget of 600 updates, 3 seeds per system.
#
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/attention_study.sh          # train, then report
#   bash scripts/attention_study.sh report                                        # report only
#
# Training runs two sweeps side by side, one CPU thread each (on the 2-core machine of
# docs/results.md: about 2.4 hours in all): the Bahdanau decoder with additive, dot and general
# attention, then the no-attention RNNencdec baseline; beside them the Luong decoder with dot,
# general, concat and location attention. A job that fails leaves multirun/study/<sweep>/<job>/failed.txt
# and the others go on; the sweep ends by printing the command that runs it again.
# The report (tables, CSV, the length figure, the attention figures) goes to docs/results/.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=docs/results
COMMON=(trainer.max_steps=600 trainer.progress_bar=false)

train() {
    export OMP_NUM_THREADS=1
    ( $PYTHON train.py -m +experiment=bahdanau model/attention=additive,dot,general seed=1,2,3 "${COMMON[@]}" \
          name=study_bahdanau hydra.sweep.dir=multirun/study/bahdanau
      $PYTHON train.py -m +experiment=encdec seed=1,2,3 "${COMMON[@]}" \
          name=study_encdec hydra.sweep.dir=multirun/study/encdec ) &
    $PYTHON train.py -m +experiment=luong_dot model/attention=dot,general,concat,location seed=1,2,3 "${COMMON[@]}" \
        name=study_luong hydra.sweep.dir=multirun/study/luong &
    wait
}

report() {
    mkdir -p "$OUT"
    # Sweep job numbers: the attention value outer, the seed inner (bahdanau/0-2 additive, 3-5 dot,
    # 6-8 general; luong/0-2 dot, 3-5 general, 6-8 concat, 9-11 location; encdec/0-2).
    $PYTHON -m nmt.cli.collect multirun/study/bahdanau multirun/study/encdec \
        --output "$OUT/bahdanau_decoder" --by-length "$OUT/bahdanau_decoder_by_length" --bucket-width 3
    $PYTHON -m nmt.cli.collect multirun/study/luong \
        --output "$OUT/luong_decoder" --by-length "$OUT/luong_decoder_by_length" --bucket-width 3
    $PYTHON -m nmt.cli.collect multirun/study --output "$OUT/all_systems"
    $PYTHON -m nmt.cli.collect multirun/study --runs --output "$OUT/runs"
    # Three fixed test sentences of 11-12 words, the reference teacher-forced; seed 1 of each system.
    $PYTHON -m nmt.cli.attention --lines 3 10 20 \
        --src data/multi30k/test_2016_flickr.de --ref data/multi30k/test_2016_flickr.en \
        --system additive=multirun/study/bahdanau/0/checkpoints/best.pt \
        --system dot=multirun/study/bahdanau/3/checkpoints/best.pt \
        --system general=multirun/study/bahdanau/6/checkpoints/best.pt \
        --system "none (encdec)"=multirun/study/encdec/0/checkpoints/best.pt \
        --output "$OUT/bahdanau_decoder_attention"
    $PYTHON -m nmt.cli.attention --lines 3 10 20 \
        --src data/multi30k/test_2016_flickr.de --ref data/multi30k/test_2016_flickr.en \
        --system dot=multirun/study/luong/0/checkpoints/best.pt \
        --system general=multirun/study/luong/3/checkpoints/best.pt \
        --system concat=multirun/study/luong/6/checkpoints/best.pt \
        --system location=multirun/study/luong/9/checkpoints/best.pt \
        --output "$OUT/luong_decoder_attention"
}

if [ "${1:-all}" != report ]; then
    train
fi
report
