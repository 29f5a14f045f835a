#!/usr/bin/env bash
# The device check of the GPU path (docs/benchmarks.md "GPU"). Two uses:
#
#   benchmarks/gpu_check.sh slim [DIR]   here, in the checkout: build DIR (default .gpu-slim), the few files the
#                                        check needs: the code, 22 bundled MIR-1K clips and the audio packages as
#                                        wheels for the GPU machine's Python (PYVER, default 3.12); no shipped model
#   benchmarks/gpu_check.sh              on the GPU machine, from that folder: the stages below, each writing its
#                                        figures to RESULTS as it finishes (make gpu-check)
#
# Stages: install the wheels a GPU image lacks; pytest -m gpu; GRU-RIS-l profile=paper trainer=gpu for STEPS steps,
# then trainer=ddp (one GPU still runs NCCL and the distributed samplers); separate a clip tiled to SONG_SECONDS
# with that checkpoint; evaluate CLIPS clips with device=cuda; optimiser steps of every MaD row (steps/s, memory,
# one paper-schedule epoch projected). DEVICE=cpu is the rehearsal: the same stages on the CPU with tiny step counts
# (trainer=cpu and ddp_sim with one process instead of gpu and ddp).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

slim() {
  local dest="${1:-.gpu-slim}" pyver="${PYVER:-3.12}" venv_python="${VENV_PYTHON:-.venv/bin/python}"
  cd "$HERE"
  rm -rf "$dest" && mkdir -p "$dest"
  # code and configs as they are in this working tree (uncommitted edits included), without the shipped model
  git ls-files --cached --others --exclude-standard -z lightning_mad benchmarks setup.cfg pyproject.toml Makefile \
      tests/conftest.py tests/route_checks.py tests/test_gpu.py \
    | grep -zv -e '\.pt$' -e '^benchmarks/results' | xargs -0 cp --parents -t "$dest"
  { git rev-parse HEAD; git diff --quiet HEAD -- . || echo "(with uncommitted changes)"; } \
    | paste -sd' ' > "$dest/COMMIT"
  # a slim sample: 16 training clips (MIR-1K's training singers), 2 validation, 4 test clips of the other singers
  local train="abjones_1_01 abjones_1_02 abjones_2_01 abjones_2_02 abjones_3_01 abjones_3_02 abjones_4_01 abjones_5_01
               amy_1_01 amy_2_01 amy_3_01 amy_4_01 amy_5_01 amy_6_01 amy_7_01 amy_8_01"
  local val="Ani_1_01 bug_1_07" test="Kenshin_4_10 annar_1_01 bobon_1_01 leon_1_01"
  mkdir -p "$dest/data/sample/mir1k/Wavfile"
  for clip in $train $val $test; do cp "data/sample/mir1k/Wavfile/$clip.flac" "$dest/data/sample/mir1k/Wavfile/"; done
  cp data/sample/mir1k/PROVENANCE.md data/sample/LICENSE-AUDIO.md "$dest/data/sample/" 2>/dev/null
  list() { echo "[$(echo $1 | sed 's/ /, /g')]"; }
  cat > "$dest/data/sample/splits.yaml" <<EOF
# Slim copy of the bundled sample for benchmarks/gpu_check.sh (MIR-1K clips only; singers disjoint across splits)
train: [{corpus: mir1k, root: mir1k, tracks: $(list "$train")}]
validation: [{corpus: mir1k, root: mir1k, tracks: $(list "$val")}]
test: [{corpus: mir1k, root: mir1k, tracks: $(list "$test")}]
EOF
  # the audio and scoring packages the GPU image lacks, at the versions tested here (docs/benchmarks.md: GPU)
  local pkgs=() name
  for name in soundfile cffi pycparser soxr omegaconf musdb stempeg ffmpeg-python future pyaml museval \
              jsonschema jsonschema-specifications referencing rpds-py; do
    pkgs+=("$name==$("$venv_python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
  done
  local platforms=() n
  for n in 17 27 28; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  "$venv_python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version "$pyver" --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 --platform any -d "$dest/.whl" "${pkgs[@]}" || return 1
  du -sh "$dest" "$dest/.whl"
  echo "built $dest ($(du -sm "$dest" | cut -f1) MiB) from $(cat "$dest/COMMIT")"
}

run_stages() {
  cd "$HERE"
  local device="${DEVICE:-cuda}"
  local work="${WORK:-/tmp/gpu-check}"
  if [ "$device" = cpu ]; then  # the rehearsal: every stage, full-size models, the fewest steps that exercise them
    : "${STEPS:=2}" "${ROW_STEPS:=1}" "${SONG_SECONDS:=10}" "${CLIPS:=1}" "${STAGE_LIMIT:=900}" "${PYTEST_LIMIT:=900}"
    export GPU_CHECK_WARMUP="${GPU_CHECK_WARMUP:-1}"
    : "${RESULTS:=$HERE/benchmarks/results-gpu-rehearsal-cpu.md}"
    local trainer=(trainer=cpu) ddp=(trainer=ddp_sim trainer.devices=1)
  else
    : "${STEPS:=40}" "${ROW_STEPS:=10}" "${SONG_SECONDS:=180}" "${CLIPS:=4}"
    : "${STAGE_LIMIT:=150}" "${PYTEST_LIMIT:=200}"
    # on the device machine $OUT comes back even when the call is stopped: the results are written there directly
    : "${RESULTS:=${OUT:-$HERE/benchmarks}/results-gpu.md}"
    local trainer=(trainer=gpu) ddp=(trainer=ddp)
  fi
  export GPU_CHECK_DEVICE="$device" GPU_CHECK_RESULTS="$RESULTS" GPU_CHECK_WORK="$work" WANDB_MODE=disabled \
    PYTHONUNBUFFERED=1
  export LIGHTNING_MAD_SAMPLE="$HERE/data/sample" PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
  rm -rf "$work" && mkdir -p "$work"
  local t_start=$SECONDS

  # 0. what the image lacks. stempeg (imported by museval through musdb) refuses to import without ffmpeg and
  # ffprobe on PATH; the check reads FLAC only, so where they are absent, stubs that fail when called pass that test
  local stubs=""
  if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    mkdir -p "$work/bin"
    for tool in ffmpeg ffprobe; do
      printf '#!/bin/sh\necho "%s: stub of gpu_check.sh (no ffmpeg here)" >&2\nexit 1\n' "$tool" > "$work/bin/$tool"
      chmod +x "$work/bin/$tool"
    done
    export PATH="$PATH:$work/bin"
    stubs="ffmpeg / ffprobe absent: stubs on PATH for stempeg's import-time check (the check reads FLAC only)"
  fi
  # the audio and scoring packages, from the wheels brought along
  if ! "$PYTHON" -c "import soundfile, soxr, omegaconf, museval" 2>/dev/null; then
    [ -d "$HERE/.whl" ] || { echo "missing audio packages and no .whl folder (build with: $0 slim)"; return 1; }
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
        --target "$work/site" "$HERE"/.whl/*.whl || return 1
    export PYTHONPATH="$PYTHONPATH:$work/site"
  fi
  "$PYTHON" -m benchmarks.gpu_check header || return 1
  [ -z "$stubs" ] || printf -- '- %s\n\n' "$stubs" | tee -a "$RESULTS"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

  local n_stage=0
  stage() {  # stage TITLE COMMAND...: run with a time limit; a failure is recorded with the end of its output
    local title="$1" t0=$SECONDS rc log="$work/stage-$((++n_stage)).log"; shift
    echo "=== $title"
    if declare -F "$1" >/dev/null; then "$@" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
    else timeout -k 20 "$STAGE_LIMIT" "$@" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}; fi
    if [ "$rc" -ne 0 ]; then
      { printf '## %s\n\nFAILED (exit %s%s); the end of its output:\n\n```\n' "$title" "$rc" \
          "$([ "$rc" -eq 124 ] && echo ", over the ${STAGE_LIMIT} s stage limit")"
        grep -v '^\s*$' "$log" | tail -n 12; printf '```\n\n'; } | tee -a "$RESULTS"
    fi
    echo "--- $title: $((SECONDS - t0)) s (check so far $((SECONDS - t_start)) s)"
  }
  pytest_stage() {
    { echo "## pytest -m gpu"; echo; echo '```'; } >> "$RESULTS"
    timeout -k 20 "$PYTEST_LIMIT" "$PYTHON" -m pytest -m gpu tests/test_gpu.py -q -rs -s -p no:cacheprovider 2>&1 \
      | tail -80 | tee -a "$RESULTS"
    local rc=${PIPESTATUS[0]}
    { echo '```'; echo; } >> "$RESULTS"
    return "$rc"
  }
  local common=(experiment=gru_ris_l profile=paper data=sample "optim.max_steps=$STEPS" "output_dir=$work/runs"
                logger.wandb=false trainer.enable_progress_bar=false trainer.limit_val_batches=1)
  stage "pytest -m gpu" pytest_stage
  stage "train ${trainer[*]}" "$PYTHON" -m benchmarks.gpu_check train "GRU-RIS-l, ${trainer[*]}" \
      "${common[@]}" "${trainer[@]}" run_name=single
  local ckpt="$work/runs/single/checkpoints/last.ckpt"
  stage "train ${ddp[*]}" "$PYTHON" -m benchmarks.gpu_check train "GRU-RIS-l, ${ddp[*]}" \
      "${common[@]}" "${ddp[@]}" run_name=ddp
  stage "separate" "$PYTHON" -m benchmarks.gpu_check separate "$ckpt" "$SONG_SECONDS"
  stage "evaluate" "$PYTHON" -m benchmarks.gpu_check evaluate "$ckpt" "$CLIPS"
  stage "rows" "$PYTHON" -m benchmarks.gpu_check rows "$ROW_STEPS"
  printf -- '---\nWhole check: %s s (%s).\n' "$((SECONDS - t_start))" "$device" | tee -a "$RESULTS"
  echo "results: $RESULTS"
}

case "${1:-run}" in
  slim) shift; slim "$@" ;;
  run) run_stages ;;
  *) echo "usage: $0 [run] | slim [DIR]"; exit 2 ;;
esac
