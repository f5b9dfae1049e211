#!/usr/bin/env bash
# The device check in one command (scripts/gpu_check.py says what it measures and writes).
#
#   bash scripts/gpu_check.sh --prepare        # here, where PyPI is reachable: fills .device/ (git-ignored)
#   bash scripts/gpu_check.sh                  # on the GPU machine: figures in $OUT/gpu_check.json
#   bash scripts/gpu_check.sh --device cpu --out /tmp/check   # here: every stage at tiny sizes
#
# The GPU machine has Python 3.12 and PyTorch but no network, no hydra-core and no OpenNMT-py:
# --prepare brings them as wheels (PEER_PYTHON=3.11 prepares wheels for a Python 3.11 instead, to
# run the peer stage here), with Multi30k and the peer's sentencepiece data. Other arguments go
# to scripts/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

if [ "${1:-}" = "--prepare" ]; then
  shared=${NMT_SHARED:-../shared}
  peer=${NMT_PEER_DIR:-.device/opennmt}
  git check-ignore -q .device || { echo "error: .device/ must be git-ignored (see .gitignore)" >&2; exit 2; }
  bash "$shared/device/build_wheels.sh" .device/wheels > /dev/null
  mkdir -p .device/multi30k "$peer/wheels"
  cp "$shared"/data/multi30k/* .device/multi30k/
  # OpenNMT-py 3.5.1 and only what its training and translation import (its torch<2.3 pin is
  # metadata alone: installed --no-deps, it runs on the machine's torch)
  version=${PEER_PYTHON:-3.12}
  "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$peer/wheels" opennmt-py==3.5.1 pyonmttok==1.38.1 rapidfuzz==3.14.6 pyahocorasick==2.3.1 configargparse==1.9.0
  cp "$shared/peers/opennmt/gru_de_en.yaml.in" "$peer/"
  "$python" scripts/gpu_check.py --peer "$peer" --prepare-peer-data "$shared/data/multi30k"
  du -sh .device
  exit 0
fi

if ! "$python" -c "import hydra" 2> /dev/null; then
  "$python" -m pip install -q --no-index --find-links .device/wheels hydra-core
fi
if ! "$python" -c "import nmt" 2> /dev/null; then
  "$python" -m pip install -q --no-deps --no-build-isolation -e . || echo "gpu_check: the project did not install; running from the checkout" >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NMT_MULTI30K=${NMT_MULTI30K:-$PWD/.device/multi30k}
exec "$python" scripts/gpu_check.py "$@"
