#!/usr/bin/env bash
# Smoke test of an installed neurosim: every command, run from an empty temporary folder
# outside the checkout, so that nothing can come from the source tree. Takes about a
# minute on 2 cores (mostly numba compiling the event loop, cached afterwards).
#   usage: .ci/smoke.sh [PYTHON]      (default: python; its environment must hold neurosim)
set -euo pipefail
PY="${1:-python}"
NEUROSIM="$(dirname "$(command -v "$PY")")/neurosim"
[ -x "$NEUROSIM" ] || NEUROSIM="$PY -m neurosim"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
unset PYTHONPATH

where="$(env -u PYTHONPATH "$PY" -c 'import neurosim, os; print(os.path.dirname(neurosim.__file__))')"
echo "smoke: neurosim from $where"

$NEUROSIM --version
$NEUROSIM train --epochs 2 --limit 60 --no-baseline --out run
$NEUROSIM eval run
"$PY" -c 'import numpy as np; np.save("x.npy", np.random.default_rng(0).random((3, 64)))'
$NEUROSIM predict run x.npy --out pred.npz
"$PY" -c 'import numpy as np; p = np.load("pred.npz"); assert p["layer2"].shape == (3, 10), p.files'
"$PY" -c 'import neurosim; r = neurosim.load_run("run"); assert set(r.params) == {"init", "fazil", "backprop"}'
$NEUROSIM experiment --list
$NEUROSIM experiment table3 --dataset digits --out e1 --set samples=20 --set 'hidden=[[4]]' \
    --set 'late_hidden=[4]' --set 't_d=[4]' --set ticks=4
$NEUROSIM experiment rosenbaum --out e2 --set 'hidden=[4, 4]' --set n_max=3 --set 'step_sizes=[1.0]' \
    --set "dtypes=['float64']" --set pretrain_epochs=1 --set pretrain_samples=40 --set batch=8
$NEUROSIM experiment table4 --out e3 --set repeats=1 --set 'hidden=[4]'
$NEUROSIM experiment ablations --dataset digits --out e4 --set train_samples=20 --set test_samples=20 \
    --set 'noise=[0]' --set "update_step=['l']" --set 'gamma=[1.0]' --set width=4
for d in e1 e2 e3 e4; do test -s "$d/table.csv"; done
# errors are one line with exit status 2
set +e
$NEUROSIM train --hidden -5 2> err.txt; rc=$?
set -e
[ "$rc" -eq 2 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -q '^error: ' err.txt
echo "smoke: every command works from an install"
