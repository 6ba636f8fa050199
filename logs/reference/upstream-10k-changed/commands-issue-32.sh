#!/usr/bin/env bash
# Issue 32's runs, one at a time, from /tmp/refclone (a clone at git 669a1e3, oneDNN venv,
# TF_BUILD=mkl), under nice 19 beside other work: each changed run's seeds 2 and 3, and the
# new dropout-off change's three seeds. Times in these runs are not quiet-machine figures.
cd /tmp/refclone
py=.venv/bin/python
NOAUG="import sys, allconvnet, runkit.recipes as r; r.RECIPES['upstream']['augmentation'].update(width_shift_range=0., height_shift_range=0., horizontal_flip=False); sys.exit(allconvnet.main(sys.argv[1:]))"
NODROP="import sys, allconvnet, runkit.recipes as r; r.RECIPES['upstream']['dropout'] = 0.; sys.exit(allconvnet.main(sys.argv[1:]))"
NOISE="import sys, numpy as np, allconvnet
load = allconvnet.cifar10.load_data
def noisy():
    (x, y), test = load()
    y = y.copy(); rng = np.random.RandomState(20); idx = rng.choice(10000, 2000, replace=False)
    y[idx] = y[rng.permutation(idx)]
    return (x, y), test
allconvnet.cifar10.load_data = noisy
sys.exit(allconvnet.main(sys.argv[1:]))"
base="--train-limit 10000 --epochs 5 --quiet"
run() { name=$1; shift; echo "$(date -u +%H:%M) start $name" >> /work/refruns/queue.log
        nice -n 19 "$@" --logdir /work/refruns/$name > /work/refruns/$name.out 2>&1
        echo "$(date -u +%H:%M) end $name rc=$?" >> /work/refruns/queue.log; }
run nodrop-s23 $py -c "$NODROP" --recipe upstream $base --seed 23
run lr3x-s15 $py allconvnet.py --recipe upstream $base --seed 15 --lr 0.03
run noaug-s17 $py -c "$NOAUG" --recipe upstream $base --seed 17
run nodrop-s24 $py -c "$NODROP" --recipe upstream $base --seed 24
run labelnoise-s19 $py -c "$NOISE" --recipe upstream $base --seed 19
run blog-s21 $py allconvnet.py --recipe blog $base --seed 21
run lr3x-s16 $py allconvnet.py --recipe upstream $base --seed 16 --lr 0.03
run noaug-s18 $py -c "$NOAUG" --recipe upstream $base --seed 18
run nodrop-s25 $py -c "$NODROP" --recipe upstream $base --seed 25
run labelnoise-s20 $py -c "$NOISE" --recipe upstream $base --seed 20
run blog-s22 $py allconvnet.py --recipe blog $base --seed 22
for s in 31 32 33 34 35 36 37 38 39 40; do run ref-s$s $py allconvnet.py --recipe upstream $base --seed $s; done
