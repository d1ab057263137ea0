#!/usr/bin/env bash
# The GPU checks: Prompt-to-Prompt against plain SDXL in at most 6 minutes on one H100; with --all
# also Prompt-to-Prompt with local blend against without (benchmarks/blend_speed.py --full, about
# 2 minutes), CLIP/BLIP scoring (about a minute), semantic regions per pair with full-size CLIP, BLIP and
# FastSAM-x (a few minutes), SDXL-Turbo inpainting per object (about a minute), LLaVA-NeXT-7B-sized
# generation (a few minutes; batch 32 of ~3,000-token prompts wants the H200's memory), the describe
# stage against the reference's one-prompt-at-a-time loop on that model (a few minutes) and the
# weights of each model group placed one group at a time (benchmarks/group_memory.py --device cuda);
# with --editors (or --all) the instruction editors at full size (InstructPix2Pix, FLUX.1 Kontext,
# Qwen-Image-Edit: about 10 minutes on an H100):
#   bash benchmarks/gpu_check.sh [--wheels DIR] [--all] [--editors]
# Runs with the machine's own python3 and torch. `--wheels DIR` installs the wheels in DIR (packages
# the machine lacks, e.g. diffusers) into a temporary folder put on PYTHONPATH, without dependencies.
# Each benchmark prints one JSON object, saved under ${OUT:-.}/.
set -euo pipefail
cd "$(dirname "$0")/.."

wheels=""
all=""
editors=""
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) wheels="${2:?--wheels needs a folder}"; shift 2 ;;
    --all) all=1; editors=1; shift ;;
    --editors) editors=1; shift ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--wheels DIR] [--all] [--editors]" >&2; exit 2 ;;
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

if [ -n "$all" ]; then
  timeout 120 "$python" benchmarks/vision_scoring.py --full > "$out/vision_scoring.json" || true
  cat "$out/vision_scoring.json"
  # semantic regions per pair with full-size CLIP, BLIP ITM large and FastSAM-x (random weights)
  timeout 240 "$python" benchmarks/regions_speed.py --full > "$out/regions_speed.json" || true
  cat "$out/regions_speed.json"
  # object removal: SDXL-Turbo-sized inpainting, 512 px, 4 steps, per object (random fp16 weights)
  timeout 180 "$python" benchmarks/inpaint_speed.py --full > "$out/inpaint_speed.json" || true
  cat "$out/inpaint_speed.json"
  # figures also go to stderr as they are measured, so a timeout still leaves the plain-generate ones
  timeout 420 "$python" benchmarks/generation_speed.py --full > "$out/generation_speed.json" || true
  cat "$out/generation_speed.json"
  timeout 480 "$python" benchmarks/describe_speed.py --full > "$out/describe_speed.json" || true
  cat "$out/describe_speed.json"
  # Prompt-to-Prompt with local blend against without, 4 pairs per call (about 2 minutes on an H100)
  timeout 300 "$python" benchmarks/blend_speed.py --full > "$out/blend_speed.json" || true
  cat "$out/blend_speed.json"
  # each model group's float16 weights placed on the GPU one group at a time: peak and place/release seconds
  timeout 180 "$python" benchmarks/group_memory.py --device cuda > "$out/group_memory.json" || true
  cat "$out/group_memory.json"
fi

if [ -n "$editors" ]; then
  # per family as measured on stderr too, so a timeout keeps the families already done
  timeout 900 "$python" benchmarks/editor_speed.py --full > "$out/editor_speed.json" || true
  cat "$out/editor_speed.json"
fi
