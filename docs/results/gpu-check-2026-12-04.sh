#!/usr/bin/env bash
# The first run of genbench on a GPU (one lent H200, 15 minutes of device time in all, one
# command of at most 10): doctor, the device tests, the engine's eager step time per model,
# then, with whatever is left of 575 s, the extreme-overfitting CNN studies on MNIST at full
# scale (R = 20; the plan puts them at 14.6 h on the 2-core CPU). Each step has its own time
# limit and none stops the next; everything lands in $OUT. MNIST travels in .gpudata (carry):
# ../shared does not travel.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg GENBENCH_PROGRESS=lines
log=$OUT/run.log
say() { echo "== $(date -u +%T) +$((SECONDS - start))s $*" | tee -a "$log"; }
say setup
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >>"$log" 2>&1
python3 -m pip install -q --no-deps --no-build-isolation -e . >>"$log" 2>&1 \
  || { say "pip failed: PYTHONPATH fallback"; export PYTHONPATH=$PWD PYTEST_ADDOPTS="-p genbench.pytest_plugin"; }
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())" >>"$log" 2>&1
say doctor
timeout 150 python3 -m genbench.cli doctor --device cuda --json >"$OUT/doctor.json" 2>>"$log"; say "doctor rc=$?"
say tests  # the library's CUDA cases (fixtures only: no data root)
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_engine_devices.py tests/test_data_loading.py \
  tests/test_preprocess.py tests/test_doctor.py >>"$log" 2>&1; say "tests rc=$?"
say step-times
timeout 100 python3 docs/results/gpu-step-times-2026-12-04.py "$OUT/step-times.json" --device cuda >>"$log" 2>&1; say "step-times rc=$?"
left=$((575 - (SECONDS - start)))
say "campaign (${left}s left)"
GENBENCH_DATA=$PWD/.gpudata timeout $left python3 -m genbench.cli run --scale full --device cuda --campaign \
  --runs 20 -k "eo_cnn and mnist and not fashion" --ledger "$OUT/paper-scale-gpu.jsonl" --out /tmp/report \
  >>"$log" 2>&1; say "campaign rc=$?"
