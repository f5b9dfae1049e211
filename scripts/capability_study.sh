#!/usr/bin/env bash
# The CPU speed paths on two capabilities of one machine: its own, and AVX2 alone (no AVX-512, no
# native bf16: most laptops and older servers), which torch and its libraries can be limited to.
# Run each part with nothing else on the machine; figures go to capability/ (git-ignored runs/).
#
#   bash scripts/capability_study.sh train       # +experiment=bahdanau_best, 150 updates: auto against fp32, both capabilities
#   (CAPS=avx2 for one of them; `own` and `avx2` are the two)
#   bash scripts/capability_study.sh products    # the decoder step's fp32 product: oneDNN against MKL, both capabilities
#   bash scripts/capability_study.sh compile     # the first update with an empty inductor cache, then a warm one
#   bash scripts/capability_study.sh benchmark   # nmt-benchmark on the reference setting, AVX2 alone, timed
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/capability
mkdir -p "$out"
# AVX2 alone, with an inductor cache of its own: torch.compile's cache does not tell the kernels it
# built under one ATEN_CPU_CAPABILITY from another's, and reusing them crashed (SIGSEGV in the loss)
avx2=(env ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
      TORCHINDUCTOR_CACHE_DIR="$PWD/$out/inductor_avx2")
own=(env)
short=(trainer.max_steps=150 trainer.max_minutes=null trainer.valid_every=1000 trainer.save_every=null
       trainer.average_last=null trainer.log_every=50 trainer.progress_bar=false decode=greedy)

capability() {  # what torch sees under the given environment
  "$@" python -c "import torch; print(torch.backends.cpu.get_cpu_capability(), 'bf16 native:',
torch.ops.mkldnn._is_mkldnn_bf16_supported())"
}

case "${1:?train, products, compile or benchmark}" in
  train)
    for caps in ${CAPS:-own avx2}; do
      declare -n prefix=$caps
      echo "== $caps: $(capability "${prefix[@]}")"
      for precision in auto fp32; do
        "${prefix[@]}" python train.py +experiment=bahdanau_best "${short[@]}" trainer.precision=$precision \
          hydra.run.dir="$out/train_${caps}_$precision" 2>&1 | grep -E "training precision|first update|step (100|150):"
      done
    done ;;
  products)
    for caps in ${CAPS:-own avx2}; do
      declare -n prefix=$caps
      echo "== $caps: $(capability "${prefix[@]}")"
      "${prefix[@]}" python - <<'PY'
import torch
from torch.utils.benchmark import Timer
from nmt.modules import onednn
torch.manual_seed(0)
for rows, inner, columns in [(64, 512, 1536), (64, 1536, 512), (64, 512, 512)]:  # the decoder step's
    x, w = torch.randn(rows, inner), torch.randn(columns, inner)
    flops = 2 * rows * inner * columns
    speeds = {name: flops / Timer(stmt, globals={"x": x, "w": w, "torch": torch, "onednn": onednn},
                                  num_threads=torch.get_num_threads())
              .blocked_autorange(min_run_time=1).median / 1e9
              for name, stmt in [("MKL (torch.nn.functional.linear)", "torch.nn.functional.linear(x, w)"),
                                 ("oneDNN (nmt.modules.onednn)", "onednn.linear(x, w)")]}
    print(f"({rows} x {inner}) @ ({inner} x {columns}), {torch.get_num_threads()} threads:", ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in speeds.items()))
PY
    done ;;
  compile)
    cache=$(mktemp -d)
    for run in empty warm; do
      TORCHINDUCTOR_CACHE_DIR=$cache nmt-benchmark +experiment=bahdanau --no-decoding --repeats 1 \
        --warmup 0 --window 1 --square 64 --output "$out/compile_$run.json" > /dev/null 2>&1
      python -c "import json; r = json.load(open('$out/compile_$run.json'))['training']; p = next(iter(r));
print('$run inductor cache: the first update took %.1f s (%s)' % (r[p]['runs'][0]['seconds'], p))"
    done
    rm -rf "$cache" ;;
  benchmark)
    echo "== avx2: $(capability "${avx2[@]}")"
    start=$SECONDS
    "${avx2[@]}" nmt-benchmark +experiment=bahdanau batching.max_sentences=64 batching.max_tokens=100000 \
      --output "$out/benchmark_avx2.json" | tee "$out/benchmark_avx2.md"
    echo "benchmark under AVX2: $((SECONDS - start)) s" ;;
  *) echo "unknown part $1" >&2; exit 2 ;;
esac
