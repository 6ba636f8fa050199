#!/usr/bin/env bash
# What --dim-ordering th costs on a CPU: allconvnet.py's own epoch 2 (`seconds` in history.csv,
# batch 32, 960 CIFAR-10 images, 32 validation images) with 'tf' and 'th', interleaved over
# two rounds, for each TensorFlow build given.
#
#   BUILDS="stock=.venv/bin/python mkl=<TF_BUILD=mkl venv>/bin/python" CIFAR_HOME=~ \
#       bash logs/reference/bench/ordering/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."
out=logs/reference/bench/ordering
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build,ordering,round,epoch2_seconds,images_per_s" > "$out/results.csv"
for round in 1 2; do
    for build in $BUILDS; do
        for ordering in tf th; do
            dir="$work/${build%%=*}-$ordering-$round"
            HOME="$CIFAR_HOME" "${build#*=}" allconvnet.py --dim-ordering "$ordering" --epochs 2 \
                --train-limit 960 --test-limit 32 --seed 1 --quiet --jit off --logdir "$dir" > "$dir.out"
            seconds=$(tail -1 "$dir/history.csv" | cut -d, -f7)
            echo "${build%%=*},$ordering,$round,$seconds,$(python3 -c "print(round(960 / $seconds, 1))")" \
                | tee -a "$out/results.csv"
        done
    done
done
