#!/usr/bin/env bash
# Reference-set runs for issue 20, one at a time, from /tmp/refclone (git 4ecc46c, oneDNN venv).
cd /tmp/refclone
py=.venv/bin/python
NOAUG="import sys, allconvnet, runkit.recipes as r; r.RECIPES['upstream']['augmentation'].update(width_shift_range=0., height_shift_range=0., horizontal_flip=False); sys.exit(allconvnet.main(sys.argv[1:]))"
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
        "$@" --logdir /work/refruns/$name > /work/refruns/$name.out 2>&1
        echo "$(date -u +%H:%M) end $name rc=$?" >> /work/refruns/queue.log; }
run seed-6 $py allconvnet.py --recipe upstream $base --seed 6
run changed-blog $py allconvnet.py --recipe blog $base --seed 11
run seed-7 $py allconvnet.py --recipe upstream $base --seed 7
run changed-lr3x $py allconvnet.py --recipe upstream $base --seed 12 --lr 0.03
run seed-8 $py allconvnet.py --recipe upstream $base --seed 8
run changed-noaug $py -c "$NOAUG" --recipe upstream $base --seed 13
run seed-9 $py allconvnet.py --recipe upstream $base --seed 9
run changed-labelnoise $py -c "$NOISE" --recipe upstream $base --seed 14
run seed-10 $py allconvnet.py --recipe upstream $base --seed 10
