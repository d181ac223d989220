#!/usr/bin/env bash
# The GPU benchmark matrix (conf/bench/gpu.yaml) on a GPU host without network access, most important points first,
# inside a time budget (BUDGET_S, default 480 s). Three steps:
#
#   1. Here (network and the eval data at hand), from the repository root:
#        experiments/bench/gpu_session.sh prepare
#      fills .gpu/ (git-ignored) with the wheels a bare GPU image lacks (transformers >= 5.23 for Qwen3-ASR, hydra,
#      av, ...) and a little real speech.
#   2. Copy the repository, .gpu/ included, to the GPU host and run there:
#        experiments/bench/gpu_session.sh tests      # the CUDA tests (they skip on a CPU)
#        experiments/bench/gpu_session.sh run [BUDGET_S] [PHASE...]
#      (Where the host's copy of .git is older than its files, set ASRFORGE_COMMIT=<hash> so records name the code.)
#      It installs those wheels into /tmp/site (torch stays the host's), runs the phases below in order while the
#      budget lasts and renders reports/<gpu>/GPU.md. With ARCHIVE=/some/path.tgz set it also packs reports/<gpu>/
#      (and reports/winner.yaml) into that file.
#   3. Copy reports/<gpu>/ back here (or `tar xzf` the archive in the repository root) and commit it.
#
# Records merge by dataset, row, engine and batch size, so a later session runs the phases an earlier one had no
# time for: name them.
set -uo pipefail
cd "$(dirname "$0")/../.."
KIT=.gpu
PY=${PYTHON:-python3}

# name|seconds it needs at least|bench overrides (after +bench=gpu)
PHASES=(
  "core|240|dataset.limit=4 matrix.singles=[sdpa,cuda_graphs,fp8,tf32,flash_attention_2,tensorrt_encoder]"
  "batch8-30s|120|matrix=gpu-sweep dataset=clips-30s bench.batch_size=8 dataset.limit=8"
  "small|120|matrix=gpu-sweep engine=qwen3-asr-0.6b dataset.limit=4"
  "batch32-30s|150|matrix=gpu-sweep dataset=clips-30s bench.batch_size=32 dataset.limit=32 bench.warmup_calls=1"
  "singles|300|dataset.limit=4 matrix.singles=[eval_mode,cudnn_benchmark,static_cache,torch_compile,pinned_transfer,cuda_streams,int8_dynamic,smoothquant_int8,encoder_compile,speculative,numa_pinning] matrix.combos=[]"
  "batch8-10s|120|matrix=gpu-sweep bench.batch_size=8 dataset.limit=8"
  "batch32-10s|150|matrix=gpu-sweep bench.batch_size=32 dataset.limit=32 bench.warmup_calls=1"
  "small-30s|150|matrix=gpu-sweep engine=qwen3-asr-0.6b dataset=clips-30s dataset.limit=4"
  "small-batch32-30s|150|matrix=gpu-sweep engine=qwen3-asr-0.6b dataset=clips-30s bench.batch_size=32 dataset.limit=32 bench.warmup_calls=1"
)

prepare() {
  local wheels=$KIT/wheels eval_dir=${ASRFORGE_EVAL_DATA:-../shared/data/eval}
  mkdir -p "$wheels" "$KIT/eval/dev"
  # What the bench path imports beyond the GPU image's packages (the image: Python 3.12, x86-64).
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" \
    transformers==5.24.0 hydra-core==1.3.8 omegaconf==2.3.1 av==18.1.0 soxr==1.1.0 jiwer==4.0.0 rapidfuzz==3.14.6 \
    whisper-normalizer==0.1.15 indic-numtowords==1.1.0 text2num==3.1.0 more-itertools==11.2.1 torchao==0.18.0 || exit 1
  "$PY" -m pip wheel -q --no-deps -w "$wheels" antlr4-python3-runtime==4.9.3 || exit 1  # sdist only on PyPI
  # A little real speech (LJ Speech, under 10 s each) for the clips; clips reuse it cyclically.
  grep '"ljspeech_LJ001' "$eval_dir/dev/manifest.jsonl" | head -8 >"$KIT/eval/dev/manifest.jsonl"
  sed 's/.*"audio": *"\([^"]*\)".*/\1/' "$KIT/eval/dev/manifest.jsonl" | while read -r file; do
    cp "$eval_dir/dev/$file" "$KIT/eval/dev/"
  done
  # The CUDA tests' clips (tests/optimizations/test_gpu_plugins.py).
  for file in librispeech_1988-24833-0000.wav librispeech_1988-24833-0001.wav ljspeech_LJ001-0013.wav; do
    cp "$eval_dir/dev/$file" "$KIT/eval/dev/"
  done
  du -sh "$KIT"
}

# The tests that skip without CUDA (the GPU plugins against the unoptimised path), inside TIMEOUT_S (default 120).
gpu_tests() {
  setup
  timeout "${TIMEOUT_S:-120}" "$PY" -m pytest -q -p no:cacheprovider -o addopts="-ra" tests/optimizations/test_gpu_plugins.py
}

setup() {
  export ASRFORGE_EVAL_DATA=$PWD/$KIT/eval ASRFORGE_CACHE=/tmp/asrforge-cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
  if "$PY" -c "import asrforge.experiments.bench.run" 2>/dev/null; then return; fi  # an installed checkout (here)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$KIT"/wheels/*.whl || exit 1
  # The packages live at the top level and install as asrforge.<name>; links do what pyproject's package-dir does.
  for package in engines optimizations serving experiments conf; do ln -sfn "../$package" "asrforge/$package"; done
  export PYTHONPATH=$PWD:/tmp/site
  "$PY" -c "import asrforge.experiments.bench.run" || exit 1
}

run() {
  local budget=${1:-480}
  shift || true
  local deadline=$((SECONDS + budget)) wanted=" $* " key
  setup
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  key=$("$PY" -c "from asrforge.devices import device_key; print(device_key('cuda'))") || exit 1
  "$PY" -m asrforge.experiments.bench.run transfer-overlap --out "reports/$key/transfer_overlap.json"
  for phase in "${PHASES[@]}"; do
    IFS='|' read -r name need overrides <<<"$phase"
    if [[ -n "${wanted// /}" && "$wanted" != *" $name "* ]]; then continue; fi
    local left=$((deadline - SECONDS))
    if ((left < need)); then echo "phase $name skipped: ${left} s left, needs ${need} s"; continue; fi
    echo "phase $name (${left} s left): $overrides"
    # shellcheck disable=SC2086  # the overrides are words
    timeout --signal=TERM "$left" "$PY" -m asrforge.experiments.bench.run +bench=gpu $overrides \
      hydra.run.dir=/tmp/asrforge-outputs/$name || echo "phase $name did not finish (its rows are lost)"
  done
  "$PY" -c "from pathlib import Path; from asrforge.experiments.bench.gpu_summary import write_summary as w; w(Path('reports/$key'))"
  cat "reports/$key/GPU.md"
  if [[ -n "${ARCHIVE:-}" ]]; then tar czf "$ARCHIVE" "reports/$key" $(ls reports/winner.yaml 2>/dev/null); fi
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  tests) gpu_tests ;;
  *) echo "usage: $0 prepare | tests | run [BUDGET_S] [PHASE...]"; exit 2 ;;
esac
