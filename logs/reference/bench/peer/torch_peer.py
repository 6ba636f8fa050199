"""The PyTorch peer of tools/bench.py's training case: the same All-CNN-C (the blog's and
upstream's layers: 9 convolutions, 6 ReLUs, dropout 0.5 after each stride-2 convolution,
global average pooling, softmax cross-entropy), batch 32, SGD with Nesterov momentum, random
images, channels-last tensors. It prints one `BENCH_RESULT {json}` line as the bench's workers
do, so that `python -m tools.bench --peer torch=...` times it in the same rounds.

Not a dependency of the project: run it with a throwaway venv, e.g.
    python3.11 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
    /tmp/torchvenv/bin/python logs/reference/bench/peer/torch_peer.py '{"warmup": 5, "repeats": 4, "steps": 10}'
"""
import json
import os
import sys
import time

import torch
from torch import nn


def all_cnn_c():
    def conv(cin, cout, k, stride=1):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)
    return nn.Sequential(
        conv(3, 96, 3), nn.ReLU(), conv(96, 96, 3), nn.ReLU(), conv(96, 96, 3, 2), nn.Dropout(0.5),
        conv(96, 192, 3), nn.ReLU(), conv(192, 192, 3), nn.ReLU(), conv(192, 192, 3, 2),
        nn.Dropout(0.5), conv(192, 192, 3), nn.ReLU(), conv(192, 192, 1), nn.ReLU(),
        conv(192, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def main(spec):
    torch.manual_seed(0)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    batch, steps = spec.get('batch', 32), spec['steps']
    model = all_cnn_c().to(memory_format=torch.channels_last)
    assert sum(p.numel() for p in model.parameters()) == 1369738  # the Keras model's count
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch * steps, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch * steps,))

    def work(n):
        for i in range(n):
            start = i % steps * batch
            opt.zero_grad()
            loss_fn(model(x[start:start + batch]), y[start:start + batch]).backward()
            opt.step()
    work(spec['warmup'])
    seconds = []
    for _ in range(spec['repeats']):
        start = time.perf_counter()
        work(steps)
        seconds.append(time.perf_counter() - start)
    print('BENCH_RESULT ' + json.dumps({
        'images_per_repeat': batch * steps, 'seconds': seconds, 'xla': False,
        'build': {'distribution': 'torch', 'versions': {'torch': torch.__version__},
                  'mkl': torch.backends.mkldnn.is_available()}}))


if __name__ == '__main__':
    main(json.loads(sys.argv[1]))
