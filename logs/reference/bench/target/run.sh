#!/usr/bin/env bash
# Issue 16's target, measured: allconvnet.py's own training epoch (the `seconds` of epoch 2 in
# its history.csv, batch 32, 3,200 images, 32 validation images) with the oneDNN build, against
# the PyTorch peer's steady-state images/s, in interleaved rounds on one otherwise idle machine.
#
#   MKL_PY=.venv/bin/python TORCH_PY=/tmp/torchvenv/bin/python CIFAR_HOME=~ \
#       bash logs/reference/bench/target/run.sh
#
# MKL_PY: a venv made with TF_BUILD=mkl ./setup.sh; TORCH_PY: a throwaway venv with torch and
# numpy (logs/reference/bench/peer/torch_peer.py says how); CIFAR_HOME: a HOME whose
# ~/.keras/datasets holds CIFAR-10 (`make data`).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
out=logs/reference/bench/target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > "$out/peer.jsonl"
for round in 1 2 3; do
    HOME="$CIFAR_HOME" "$MKL_PY" allconvnet.py --epochs 2 --train-limit 3200 --test-limit 32 \
        --seed "$round" --quiet --logdir "$work/round$round" > "$work/round$round.out"
    cp "$work/round$round/history.csv" "$out/allconvnet-round$round.csv"
    cp "$work/round$round/run.json" "$out/allconvnet-round$round.run.json"
    "$TORCH_PY" logs/reference/bench/peer/torch_peer.py '{"warmup": 5, "repeats": 4, "steps": 10}' \
        | grep '^BENCH_RESULT ' | cut -d' ' -f2- >> "$out/peer.jsonl"
done
"$MKL_PY" - "$out" <<'PY'
import json, os, statistics, sys
import pandas
out = sys.argv[1]
ours = [3200 / pandas.read_csv(os.path.join(out, 'allconvnet-round%d.csv' % r)).seconds[1]
        for r in (1, 2, 3)]
peer = [r['images_per_repeat'] / s for line in open(os.path.join(out, 'peer.jsonl'))
        for r in [json.loads(line)] for s in r['seconds']]
summary = {'allconvnet_epoch2_images_per_s': ours, 'peer_images_per_s': peer,
           'allconvnet_median': statistics.median(ours), 'peer_median': statistics.median(peer)}
summary['ratio'] = summary['allconvnet_median'] / summary['peer_median']
with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
print(json.dumps(summary, indent=2))
PY
