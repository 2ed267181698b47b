#!/usr/bin/env bash
# The prepared GPU check (issue 27), under 8 minutes on one GPU:
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default benchmarks/runs/gpu_check)
# 1. names the card; 2. the device-aware tests on CUDA (GENZOO_TEST_DEVICE=cuda); 3. one
# 1-process torchrun run on NCCL, train and evaluate, against one plain process with the same
# shards (same parameters up to float tolerance); 4. the speed rows whose code takes a device.
# Every step's exit status, time and figures go to OUT_DIR/gpu_check.json, with the card.
# GENZOO_GPU_CHECK_DRY=1: the same steps on the CPU (gloo) at smoke sizes, as its test runs it.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/benchmarks/runs/gpu_check}" && cd "${1:-$ROOT/benchmarks/runs/gpu_check}" && pwd)
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ "${GENZOO_GPU_CHECK_DRY:-0}" = 1 ]; then
  DEV=cpu SMOKE=--smoke T_TESTS=300 T_STEP=240
  # A slice that proves the plumbing in seconds; the GPU run takes the whole selection.
  TESTS=(tests/evaluation/test_exact_log_partition.py
         tests/test_conformance.py::test_check_model_runs_every_check_and_names_a_failure)
else
  DEV=cuda SMOKE= T_TESTS=300 T_STEP=90
  # Every test that takes the device fixture: about 150 s on one CPU thread, the conformance
  # suite 45 s of it.
  TESTS=(tests/test_conformance.py tests/test_device_hygiene.py
         tests/evaluation/test_exact_log_partition.py tests/evaluation/test_ais.py
         tests/training/test_trainer.py tests/training/test_checkpoint.py
         tests/test_distributed.py tests/test_cli.py)
fi
cd "$ROOT"
STEPS=()
step() {  # step NAME SECONDS CMD...: run, log to OUT/NAME.log, record status and wall time
  local name=$1 limit=$2 t0=$SECONDS rc; shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; rc=$?
  tail -n 3 "$OUT/$name.log"
  STEPS+=("$name $rc $((SECONDS - t0))")
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python -c "import torch; print('card:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (cpu)', '| torch', torch.__version__, '| cuda', torch.version.cuda)"

# --maxfail=5, not -x: one short GPU run shows several failures at once, and still stops
# early when everything fails the same way; --durations: where the GPU time goes; a test
# that hangs fails alone (pytest-timeout, where installed) instead of timing out the step.
PER_TEST=()
python -c "import pytest_timeout" 2>/dev/null && PER_TEST=(--timeout=120)
step tests "$T_TESTS" env GENZOO_TEST_DEVICE=$DEV python -m pytest --maxfail=5 -q \
  -p no:cacheprovider -rs --durations=15 ${PER_TEST[@]+"${PER_TEST[@]}"} \
  --junitxml="$OUT/tests.xml" "${TESTS[@]}"

TRAIN=(train rbm --data digits --set data.binarize=threshold --set model.n_hidden=16
       --set train.epochs=2 --set train.batch_size=50 --set train.shards=2
       --set train.progress=false --set train.grid_samples=0 --set "train.device=$DEV")
step nccl_train "$T_STEP" python -m torch.distributed.run --standalone --nproc_per_node=1 \
  -m genzoo "${TRAIN[@]}" --out "$OUT/nccl"
step one_train "$T_STEP" python -m genzoo "${TRAIN[@]}" --out "$OUT/one"
step nccl_eval "$T_STEP" python -m torch.distributed.run --standalone --nproc_per_node=1 \
  -m genzoo evaluate "$OUT/nccl" --device "$DEV" --json --out "$OUT/nccl_eval.json"
step one_eval "$T_STEP" python -m genzoo evaluate "$OUT/one" --device "$DEV" --json \
  --out "$OUT/one_eval.json"

for row in $(grep -l '"speed"' benchmarks/rows/*.json); do
  name=$(basename "$row" .json)
  if grep -q '"device"' "$row"; then  # the row's options hold a device: its code takes --device
    step "speed_$name" "$T_STEP" python benchmarks/run.py "$name" -- $SMOKE --device "$DEV" \
      --out "$OUT/speed"
  else
    echo "== speed_$name: NOT RUN, its row has no device option (the speed issue adds it)"
    STEPS+=("speed_$name not-run 0")
  fi
done

python - "$OUT" "$DEV" "${STEPS[@]}" <<'EOF'
import json, sys, torch
import xml.etree.ElementTree as ET
from pathlib import Path
from safetensors.torch import load_file
out, dev, steps = Path(sys.argv[1]), sys.argv[2], [s.split() for s in sys.argv[3:]]
card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (cpu)"
doc = {"card": card, "device": dev, "torch": torch.__version__, "cuda": torch.version.cuda,
       "dry_run": dev == "cpu", "steps": {n: {"rc": int(rc) if rc != "not-run" else rc, "wall_s": int(s)}
                  for n, rc, s in steps}}
if (out / "tests.xml").is_file():  # pytest's counts
    s = ET.parse(out / "tests.xml").getroot().find("testsuite")
    doc["tests"] = {k: int(s.get(k)) for k in ("tests", "failures", "errors", "skipped")}
try:  # the NCCL (1-process torchrun) run against one plain process with the same shards
    a, b = (load_file(str(out / r / "model.safetensors")) for r in ("nccl", "one"))
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    nll = [json.loads((out / f"{r}_eval.json").read_text())["nll_nats"] for r in ("nccl", "one")]
    doc["nccl_vs_one_process"] = {"max_abs_parameter_difference": diff, "nll_nats": nll,
                                  "same": diff <= 1e-5 and abs(nll[0] - nll[1]) <= 1e-4}
except (OSError, KeyError, ValueError) as exc:
    doc["nccl_vs_one_process"] = {"error": f"{type(exc).__name__}: {exc}"}
(out / "gpu_check.json").write_text(json.dumps(doc, indent=1) + "\n")
ok = all(rc in ("0", "not-run") for _, rc, _ in steps) and doc["nccl_vs_one_process"].get("same")
print(json.dumps(doc, indent=1), f"\nwrote {out / 'gpu_check.json'}", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
