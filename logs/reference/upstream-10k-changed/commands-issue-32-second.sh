#!/usr/bin/env bash
# Issue 32's runs, second session: from /tmp/refclone (a clone at git 656e6bb), one at a time,
# under nice 19 beside other work. Changed runs on the oneDNN venv (.venv, TF_BUILD=mkl), like
# their first seeds; reference-configuration seeds on the stock venv (.venv-stock,
# TF_BUILD=stock) and the oneDNN one, to bound the blow-up rate of each build.
cd /tmp/refclone
py=.venv/bin/python; stock=.venv-stock/bin/python
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
run noaug-s18 $py -c "$NOAUG" --recipe upstream $base --seed 18
until grep -q 'stock rc=0' /tmp/setup-stock.log; do sleep 10; done
run stock-s41 $stock allconvnet.py --recipe upstream $base --seed 41
run nodrop-s25 $py -c "$NODROP" --recipe upstream $base --seed 25
run stock-s42 $stock allconvnet.py --recipe upstream $base --seed 42
run labelnoise-s20 $py -c "$NOISE" --recipe upstream $base --seed 20
run stock-s43 $stock allconvnet.py --recipe upstream $base --seed 43
run blog-s22 $py allconvnet.py --recipe blog $base --seed 22
for s in 44 45 46 47 48 49 50; do
    run stock-s$s $stock allconvnet.py --recipe upstream $base --seed $s
    run mkl-s$s $py allconvnet.py --recipe upstream $base --seed $s
done
