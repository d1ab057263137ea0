#!/usr/bin/env bash
# The GPU checks, in at most 6 minutes on one H100:
#   bash benchmarks/gpu_check.sh [--wheels DIR]
# Runs with the machine's own python3 and torch. `--wheels DIR` installs the wheels in DIR (packages
# the machine lacks, e.g. diffusers) into a temporary folder put on PYTHONPATH, without dependencies.
# Each benchmark prints one JSON object, saved under ${OUT:-.}/.
set -euo pipefail
cd "$(dirname "$0")/.."

wheels=""
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) wheels="${2:?--wheels needs a folder}"; shift 2 ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--wheels DIR]" >&2; exit 2 ;;
  esac
done

python="${PYTHON:-python3}"
out="${OUT:-.}"
mkdir -p "$out"
site=""
if [ -n "$wheels" ]; then
  site="$(mktemp -d)"
  "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
fi
export PYTHONPATH="src${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

nvidia-smi -L
"$python" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"

# Prompt-to-Prompt vs plain SDXL generation (2.5 minutes on an H100; killed at 5.5)
timeout 330 "$python" benchmarks/p2p_speed.py > "$out/p2p_speed.json"
cat "$out/p2p_speed.json"

# The other GPU benchmarks go here, each with its own timeout, keeping the total under 6 minutes:
# timeout 60 "$python" benchmarks/vision_scoring.py --full > "$out/vision_scoring.json"
# timeout 60 "$python" benchmarks/generation_speed.py --full > "$out/generation_speed.json"
