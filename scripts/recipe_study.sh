#!/usr/bin/env bash
# The quality recipe of docs/results.md ("The quality recipe"), end to end.
#
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/recipe_study.sh ablation   # 2,500 updates per system
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/recipe_study.sh budget     # the 20-minute runs
#   NMT_MULTI30K=../shared/data/multi30k bash scripts/recipe_study.sh two_hours  # the 2-hour runs
#   bash scripts/recipe_study.sh report [ablation|budget|two_hours]              # tables into docs/results/
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
# two_hours: the recipe with a 2-hour budget, seeds 1 and 2 side by side at one CPU thread each
# (each run has half the machine for 2 hours; on this CPU two one-thread processes get more done
# than one two-thread process), and the two as an ensemble, which together took 2 hours of the
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=docs/results
ABLATION=multirun/recipe/ablation
BUDGET=multirun/recipe/budget
TWO_HOURS=multirun/recipe/two_hours
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

score() {  # score METRIC HYP REF: sacreBLEU's BLEU or chrF of a detokenized file
    $PYTHON -m nmt.cli.evaluate --hyp "$2" --ref "$3" | sed -n "s/^$1 \([0-9.]*\).*/\1/p" | head -1
}

decode() {  # decode HYP ALPHA PREFIX CHECKPOINT...: beam 5 on PREFIX.de into HYP (several checkpoints: an ensemble)
    local hyp=$1 alpha=$2 prefix=$3
    shift 3
    $PYTHON -m nmt.cli.translate --checkpoint "$@" --input "$prefix.de" --alpha "$alpha" --output "$hyp"
}

hyp_path() {  # hyp_path RUN CHECKPOINT ALPHA PREFIX: where decode_bleu writes the checkpoint's output
    echo "$1/decoded.${2//\//_}.$3.$(basename "$4").hyp"
}

decode_bleu() {  # decode_bleu RUN CHECKPOINT ALPHA PREFIX: beam-5 BLEU of the checkpoint on PREFIX.de -> PREFIX.en
    local hyp
    hyp=$(hyp_path "$@")
    decode "$hyp" "$3" "$4" "$1/$2"
    score BLEU "$hyp" "$4.en"
}

decode_table() {  # beam-5 BLEU on val and test: each run's best.pt and the average of its last 5
    echo "| run | checkpoint | alpha | val BLEU | test BLEU |"
    echo "| --- | --- | --- | --- | --- |"
    for run in "$ABLATION"/*/; do
        run=${run%/}
        [ -f "$run/averaged_last5.pt" ] || $PYTHON -m nmt.cli.average --run "$run" --last 5 \
            --output "$run/averaged_last5.pt" > /dev/null
        for checkpoint in checkpoints/best.pt averaged_last5.pt; do
            for alpha in ${ALPHAS:-1.0}; do
                echo "| $(basename "$run") | $checkpoint | $alpha | $(decode_bleu "$run" "$checkpoint" "$alpha" $VAL)" \
                     "| $(decode_bleu "$run" "$checkpoint" "$alpha" $TEST) |"
            done
        done
    done
}

ensemble_table() {  # beam 5, alpha 1.0, on val and test: each 2-hour run's best.pt, then all of them as one ensemble
    local checkpoints=() run hyp
    echo "| system | val BLEU | test BLEU | test chrF |"
    echo "| --- | --- | --- | --- |"
    for run in "$TWO_HOURS"/*/; do
        run=${run%/}
        checkpoints+=("$run/checkpoints/best.pt")
        hyp=$(hyp_path "$run" checkpoints/best.pt 1.0 $TEST)
        echo "| $(basename "$run") | $(decode_bleu "$run" checkpoints/best.pt 1.0 $VAL)" \
             "| $(decode_bleu "$run" checkpoints/best.pt 1.0 $TEST) | $(score chrF "$hyp" $TEST.en) |"
    done
    for prefix in $VAL $TEST; do
        decode "$TWO_HOURS/ensemble.$(basename "$prefix").hyp" 1.0 "$prefix" "${checkpoints[@]}"
    done
    hyp="$TWO_HOURS/ensemble.$(basename $TEST).hyp"
    echo "| ensemble of the ${#checkpoints[@]} | $(score BLEU "$TWO_HOURS/ensemble.$(basename $VAL).hyp" $VAL.en)" \
         "| $(score BLEU "$hyp" $TEST.en) | $(score chrF "$hyp" $TEST.en) |"
}

budget() {
    $PYTHON train.py +experiment=bahdanau trainer.max_minutes=19.25 trainer.max_steps=null seed=1 \
        trainer.progress_bar=false hydra.run.dir=$BUDGET/bahdanau_seed1
    for seed in 1 2; do
        $PYTHON train.py +experiment=bahdanau_best seed=$seed trainer.progress_bar=false \
            hydra.run.dir=$BUDGET/bahdanau_best_seed$seed
    done
}

two_hours() {
    export OMP_NUM_THREADS=1
    for seed in 1 2; do
        $PYTHON train.py +experiment=bahdanau_best trainer.max_minutes=118 seed=$seed trainer.progress_bar=false \
            hydra.run.dir=$TWO_HOURS/bahdanau_best_seed$seed &
        # the ensemble needs one tokenizer: seed 2 starts once seed 1 has its (trained or cached) one
        until [ -f "$TWO_HOURS/bahdanau_best_seed$seed/tokenizer/tgt.model" ] || ! kill -0 $! 2>/dev/null; do sleep 2; done
    done
    wait
}

report() {  # report [PART...]: the tables of the parts named (ablation, budget, two_hours; default: all)
    local parts=("$@")
    [ $# -gt 0 ] || parts=(ablation budget two_hours)
    mkdir -p "$OUT"
    for part in "${parts[@]}"; do
        case $part in
            ablation)
                $PYTHON -m nmt.cli.collect "$ABLATION" --output "$OUT/recipe_ablation"
                decode_table > "$OUT/recipe_ablation_decoding.md" ;;
            budget) $PYTHON -m nmt.cli.collect "$BUDGET" --output "$OUT/recipe_20_minutes" ;;
            two_hours)
                $PYTHON -m nmt.cli.collect "$TWO_HOURS" --output "$OUT/recipe_2_hours"
                ensemble_table > "$OUT/recipe_2_hours_ensemble.md" ;;
            *) echo "report: unknown part $part (ablation, budget, two_hours)" >&2; exit 2 ;;
        esac
    done
}

case "${1:-}" in
    ablation) ablation ;;
    budget) budget ;;
    two_hours) two_hours ;;
    report) shift; report "$@" ;;
    *) echo "usage: bash scripts/recipe_study.sh ablation|budget|two_hours|report [PART...]" >&2; exit 2 ;;
esac
