#!/usr/bin/env bash
# The quality recipe of docs/results.md ("The quality recipe"), end to end.
#
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/recipe_study.sh ablation   # 2,500 updates per system
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/recipe_study.sh budget     # the 20-minute runs
#   bash scripts/recipe_study.sh report                                          # tables into docs/results/
#
# ablation: each ingredient added in turn at an equal budget of 2,500 updates (about what 20
# minutes buy on the 2-core machine of docs/results.md), seed 1, two runs side by side at one
# CPU thread each (about 30 minutes a pair); then the average of each run's last 5 checkpoints
# and the length penalty, decoded on val and test with the project's tools. Choices are made on
# val; test is shown beside it. ALPHAS="0.6 1.0 1.4" bash scripts/recipe_study.sh report also
# decodes with those length penalties (default: 1.0).
# budget: the plain bahdanau experiment and the recipe under the same 20-minute wall clock, one
# after another on the whole machine (never two at a time: they compete for the cores), so
# drift between them shows: bahdanau seed 1, recipe seeds 1 and 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=docs/results
ABLATION=multirun/recipe/ablation
BUDGET=multirun/recipe/budget
COMMON=(+experiment=bahdanau trainer.max_steps=2500 trainer.save_every=100 trainer.progress_bar=false seed=1)
TIED=(model.decoder.tie_embeddings=true model.share_embeddings=true)
BUDGET_LR=(scheduler=budget)
HIGHER_LR=(optim.lr=0.002 scheduler.warmup_steps=200)
VAL=data/multi30k/val
TEST=data/multi30k/test_2016_flickr

ablation() {
    export OMP_NUM_THREADS=1
    $PYTHON train.py "${COMMON[@]}" hydra.run.dir=$ABLATION/1_bahdanau &
    $PYTHON train.py "${COMMON[@]}" "${TIED[@]}" hydra.run.dir=$ABLATION/2_tied &
    wait
    $PYTHON train.py "${COMMON[@]}" "${TIED[@]}" "${BUDGET_LR[@]}" hydra.run.dir=$ABLATION/3_tied_budget &
    $PYTHON train.py "${COMMON[@]}" "${TIED[@]}" "${BUDGET_LR[@]}" "${HIGHER_LR[@]}" \
        hydra.run.dir=$ABLATION/4_tied_budget_lr2e-3 &
    wait
}

bleu() {  # bleu HYP REF: sacreBLEU of a detokenized file
    $PYTHON scripts/evaluate.py --hyp "$1" --ref "$2" | sed -n 's/.*BLEU[ =]*\([0-9.]*\).*/\1/p' | head -1
}

decode_bleu() {  # decode_bleu RUN CHECKPOINT ALPHA PREFIX: beam-5 BLEU of the checkpoint on PREFIX.de -> PREFIX.en
    local hyp="$1/decoded.${2//\//_}.$3.$(basename "$4").hyp"
    $PYTHON scripts/translate.py --checkpoint "$1/$2" --input "$4.de" --alpha "$3" --output "$hyp"
    bleu "$hyp" "$4.en"
}

decode_table() {  # beam-5 BLEU on val and test: each run's best.pt and the average of its last 5
    echo "| run | checkpoint | alpha | val BLEU | test BLEU |"
    echo "| --- | --- | --- | --- | --- |"
    for run in "$ABLATION"/*/; do
        run=${run%/}
        [ -f "$run/averaged_last5.pt" ] || $PYTHON scripts/average_checkpoints.py --run "$run" --last 5 \
            --output "$run/averaged_last5.pt" > /dev/null
        for checkpoint in checkpoints/best.pt averaged_last5.pt; do
            for alpha in ${ALPHAS:-1.0}; do
                echo "| $(basename "$run") | $checkpoint | $alpha | $(decode_bleu "$run" "$checkpoint" "$alpha" $VAL)" \
                     "| $(decode_bleu "$run" "$checkpoint" "$alpha" $TEST) |"
            done
        done
    done
}

budget() {
    $PYTHON train.py +experiment=bahdanau trainer.max_minutes=19.25 trainer.max_steps=null seed=1 \
        trainer.progress_bar=false hydra.run.dir=$BUDGET/bahdanau_seed1
    for seed in 1 2; do
        $PYTHON train.py +experiment=bahdanau_best seed=$seed trainer.progress_bar=false \
            hydra.run.dir=$BUDGET/bahdanau_best_seed$seed
    done
}

report() {
    mkdir -p "$OUT"
    $PYTHON scripts/collect_results.py "$ABLATION" --output "$OUT/recipe_ablation"
    decode_table > "$OUT/recipe_ablation_decoding.md"
    $PYTHON scripts/collect_results.py "$BUDGET" --output "$OUT/recipe_20_minutes"
}

case "${1:-}" in
    ablation) ablation ;;
    budget) budget ;;
    report) report ;;
    *) echo "usage: bash scripts/recipe_study.sh ablation|budget|report" >&2; exit 2 ;;
esac
