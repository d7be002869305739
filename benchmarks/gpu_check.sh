#!/usr/bin/env bash
# GPU check of the 2-D training step (issue 14; docs/cost_2d.md). At most about 8 minutes on one GPU:
#
#   1. the tests that use CUDA when it is there      (pytest -m "not slow" -k "cuda or gpu", <= 150 s)
#   2. the 2-D / 1-D step benchmark on CUDA          (benchmarks/bench_train.py --ratio --device cuda, <= 150 s)
#   3. 2 minutes of Burgers 2-D training on CUDA     (pymsde simulate burgers2d (small) + pymsde train --max-minutes 2, <= 200 s)
#
# Everything is collected into one JSON file, $OUT/gpu_check.json (./gpu_check_out when OUT is
# unset), beside the logs of each part. The data set and the run directory live in a temporary
# directory (the 2-D file is about 135 MB) and are removed at the end.
#
# Usage (from the repository root):
#   bash benchmarks/gpu_check.sh                 # on a machine with a CUDA GPU
#   bash benchmarks/gpu_check.sh --cpu-dry-run   # every part on the CPU, tiny sizes (checks the script)
#
# Environment: uses the python3 (or $PYTHON) that imports torch. When pymsde itself is not
# importable it tries `pip install -e .[test]` (a fresh machine with network: first
# `pip install torch==2.13.0`); offline it installs wheels from ./.whl if that folder exists
# (e.g. tomli_w, which pymsde needs) and otherwise runs from the source tree (PYTHONPATH).
set -uo pipefail

DRY=0
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) DRY=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $arg (expected --cpu-dry-run)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 2
OUT_DIR="${OUT:-./gpu_check_out}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 PYMSDE_NO_PROGRESS=1
T0=$(date +%s)

# ---- environment ------------------------------------------------------------------------------
if ! "$PY" -c "import pymsde" >/dev/null 2>&1; then
  if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" .whl/*.whl && export PYTHONPATH="$WORK/site"
  fi
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install -q torch==2.13.0 || true
  fi
  "$PY" -m pip install -q -e ".[test]" >"$OUT_DIR/install.log" 2>&1 || true
  if ! "$PY" -c "import pymsde" >/dev/null 2>&1; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
"$PY" - >"$OUT_DIR/env.json" 2>"$OUT_DIR/env.err" <<'EOF'
import json, platform, torch
info = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "python": platform.python_version()}
try:
    import pymsde
    info["pymsde"] = pymsde.__version__
except Exception as exc:  # noqa: BLE001
    info["pymsde_import_error"] = repr(exc)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version())
print(json.dumps(info))
EOF
cat "$OUT_DIR/env.json"

if [ "$DRY" = 1 ]; then
  DEVICE=cpu; BENCH_STEPS=2; BENCH_WARMUP=1; SIM_STEPS=65; WINDOW=32; MINUTES=0.1; FORECAST=16; T_END=0.064
  export OMP_NUM_THREADS=1     # a CPU shared with other work: idle OpenMP threads slow small steps badly
else
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: torch sees no CUDA device; use --cpu-dry-run to check the script on a CPU" >&2
    exit 3
  fi
  DEVICE=cuda; BENCH_STEPS=30; BENCH_WARMUP=5; SIM_STEPS=257; WINDOW=128; MINUTES=2; FORECAST=100; T_END=0.256
fi

# ---- 1. the CUDA tests ------------------------------------------------------------------------
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" -k "cuda or gpu" tests \
  --junitxml="$OUT_DIR/pytest.xml" >"$OUT_DIR/pytest.log" 2>&1
echo "$?" >"$WORK/pytest.rc"
tail -3 "$OUT_DIR/pytest.log"

# ---- 2. the step benchmark (1-D and 2-D interleaved, the 2-D levers as variants) ---------------
timeout 150 "$PY" benchmarks/bench_train.py --ratio --device "$DEVICE" --steps "$BENCH_STEPS" \
  --warmup "$BENCH_WARMUP" --breakdown-steps 3 --cache-dir "$WORK/cache" \
  --variant "default" --variant "lf32 loglik_frames=32" --variant "lf32_es4 loglik_frames=32 encode_stride=4" \
  --variant "lf32_es4_cl loglik_frames=32 encode_stride=4 conv_memory_format=channels_last" \
  --out "$OUT_DIR/bench_train.json" >/dev/null 2>"$OUT_DIR/bench_train.log"
echo "$?" >"$WORK/bench.rc"
tail -5 "$OUT_DIR/bench_train.log"

# ---- 3. two minutes of Burgers 2-D training -----------------------------------------------------
{
  timeout 60 "$PY" -m pymsde simulate burgers2d --n-traj 4 --n-steps "$SIM_STEPS" --t-end "$T_END" \
    --split 3,1,0 --out "$WORK/b2d.npz" &&
  timeout 200 "$PY" -m pymsde train "$WORK/b2d.npz" --coarse 8 8 --micro 5 --device "$DEVICE" \
    --max-minutes "$MINUTES" --epochs 100000 --window "$WINDOW" --validate-every 20 \
    --val-forecast-steps "$FORECAST" --checkpoint-every 0 --no-progress --out "$WORK/run"
} >"$OUT_DIR/train.log" 2>&1
echo "$?" >"$WORK/train.rc"
tail -3 "$OUT_DIR/train.log"

# ---- collect ----------------------------------------------------------------------------------
"$PY" - "$OUT_DIR" "$WORK" "$DRY" "$T0" <<'EOF'
import csv, json, sys, time, xml.etree.ElementTree as ET
from pathlib import Path
out, work, dry, t0 = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
rc = lambda name: int((work / f"{name}.rc").read_text().strip() or -1)  # noqa: E731
res = {"check": "gpu_check", "cpu_dry_run": dry, "env": json.loads((out / "env.json").read_text() or "{}")}
tests = {"rc": rc("pytest")}
try:
    suite = ET.parse(out / "pytest.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    tests["cases"] = [{"name": c.get("classname", "") + "::" + c.get("name", ""),
                       "outcome": "failed" if c.find("failure") is not None or c.find("error") is not None
                       else "skipped" if c.find("skipped") is not None else "passed"} for c in suite.iter("testcase")]
except (OSError, ET.ParseError) as exc:
    tests["error"] = repr(exc)
res["tests"] = tests
bench = {"rc": rc("bench")}
try:
    b = json.loads((out / "bench_train.json").read_text())
    bench.update(ratio_2d_over_1d=b.get("ratio_2d_over_1d"), device=b.get("device"), torch=b.get("torch_version"),
                 models={k: {f: v.get(f) for f in ("median_ms", "p90_ms", "first_step_s", "breakdown_ms")}
                         for k, v in b["models"].items()})
except (OSError, ValueError, KeyError) as exc:
    bench["error"] = repr(exc)
res["bench_train"] = bench
train = {"rc": rc("train")}
run = work / "run"
try:
    meta = json.loads((run / "metadata.json").read_text())
    train["metadata"] = {k: meta[k] for k in meta if k in ("timings", "steps", "train_time_s", "device", "versions",
                                                          "stopped", "stop_reason", "final")}
    for name in ("log.csv", "val.csv"):
        if (run / name).is_file():
            rows = list(csv.DictReader((run / name).open()))
            train[name] = {"rows": len(rows), "first": rows[0] if rows else None, "last": rows[-1] if rows else None}
except (OSError, ValueError) as exc:
    train["error"] = repr(exc)
res["train_2d"] = train
res["wall_s"] = int(time.time()) - t0
(out / "gpu_check.json").write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps({k: (v.get("rc") if isinstance(v, dict) and "rc" in v else v) for k, v in res.items()}))
EOF
