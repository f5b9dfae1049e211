#!/usr/bin/env bash
# The alignment study of docs/results.md: does guiding attention with word alignments, or making
# it sparse, change how well it aligns and how well the model translates? On Multi30k de->en:
# {additive, scaled_dot} x {softmax, sparsemax, entmax15} x {unguided, guided}, 3 seeds: 36 runs
# of the bahdanau experiment for 600 updates, the budget of the attention study (docs/results.md),
# whose additive softmax runs this study's unguided additive softmax runs repeat.
#
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/alignment_study.sh    # alignments, training, report
#   bash scripts/alignment_study.sh train     # alignments and training only
#   bash scripts/alignment_study.sh report    # the report only
#
# 1. eflomal aligns the training pairs (scripts/silver_alignments.py; needs `pip install eflomal`):
#    the links guided runs learn from. Unguided runs read the same file with weight 0, which
#    trains bitwise like no file (tests/training/test_guided_alignment.py).
# 2. Two jobs side by side, one CPU thread each, seed 1 of every system first, then seeds 2 and 3
#    (a partial study already compares every system). Each run has its own folder under
#    multirun/alignment_study/; a finished run (summary.json) is skipped and an interrupted one
#    resumes from its last.pt, so the command can be stopped and started again at any time.
# 3. The report (scripts/alignment_study_report.py): test BLEU and AER against eflomal's silver
#    alignments of test_2016_flickr, mean +- std over seeds, paired bootstrap p-values; attention
#    figures of the project's own sentences (docs/figures/sentences.de), one per normalizer.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ROOT=multirun/alignment_study
ALIGNMENTS=data/multi30k/train.de-en.align
STEPS=${STEPS:-600}       # 36 runs in about 3 hours on the 2-core machine of docs/results.md
GUIDED_WEIGHT=${GUIDED_WEIGHT:-1}

one_run() {  # scorer normalizer guided(0/1) seed
    local scorer=$1 normalizer=$2 guided=$3 seed=$4
    local name="${scorer}_${normalizer}_$([ "$guided" = 1 ] && echo guided || echo unguided)"
    local dir="$ROOT/$name/seed$seed"
    [ -f "$dir/summary.json" ] && return 0
    mkdir -p "$dir"
    echo "$(date +%H:%M:%S) start $dir"
    OMP_NUM_THREADS=1 $PYTHON train.py +experiment=bahdanau name="alignment_study" \
        model/attention="$scorer" model/attention/normalizer="$normalizer" \
        trainer.guided_alignment.weight=$([ "$guided" = 1 ] && echo "$GUIDED_WEIGHT" || echo 0) \
        trainer.guided_alignment.alignments="$ALIGNMENTS" seed="$seed" \
        trainer.max_steps="$STEPS" trainer.valid_every=300 trainer.resume=auto trainer.progress_bar=false \
        hydra.run.dir="$dir" > "$dir/stdout.log" 2>&1 || echo "$(date +%H:%M:%S) FAILED $dir (see $dir/stdout.log)"
    echo "$(date +%H:%M:%S) done $dir"
}
export -f one_run
export PYTHON ROOT ALIGNMENTS STEPS GUIDED_WEIGHT

alignments() {
    [ -f "$ALIGNMENTS" ] && return 0
    local data=${NMT_MULTI30K:?set NMT_MULTI30K to the folder of the Multi30k files}
    mkdir -p "$(dirname "$ALIGNMENTS")"
    $PYTHON scripts/silver_alignments.py --src "$data/train.de.gz" --tgt "$data/train.en.gz" --output "$ALIGNMENTS"
}

train() {
    for seed in 1 2 3; do
        for scorer in additive scaled_dot; do
            for normalizer in softmax sparsemax entmax15; do
                for guided in 0 1; do
                    echo "$scorer $normalizer $guided $seed"
                done
            done
        done
    done | xargs -P 2 -L 1 bash -c 'one_run "$@"' _
}

report() {
    $PYTHON scripts/alignment_study_report.py --runs "$ROOT" --output docs/results/alignment_study
}

mode=${1:-all}
if [ "$mode" != report ]; then
    alignments
    train
fi
if [ "$mode" != train ]; then
    report
fi
