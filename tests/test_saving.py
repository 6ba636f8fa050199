"""Saving a run's state: optimizer state survives state.h5, and a crash mid-save keeps the old file."""

import numpy as np
import pytest
from keras.optimizers import SGD

import allconvnet
from make_parallel import make_parallel
from runkit.recipes import RECIPES
from runkit.callbacks import AtomicModelCheckpoint
from runkit.errors import WriteFailed
from runkit.files import write_whole
from runkit.logdir import claim
from runkit.resume import load_state, save_state


def trained(towers, steps):
    template = allconvnet.build_model(RECIPES['blog'])
    model = make_parallel(template, towers, device='/cpu:%d')
    model.compile(loss='categorical_crossentropy', metrics=['accuracy'],
                  optimizer=SGD(lr=0.1, decay=1e-3, momentum=0.9, nesterov=True))
    rng = np.random.RandomState(0)
    for _ in range(steps):
        model.train_on_batch(rng.rand(4, 32, 32, 3).astype('float32'),
                             np.eye(10)[rng.randint(0, 10, 4)])
    return template, model


@pytest.mark.parametrize('towers', [1, 2])
def test_state_round_trip_restores_weights_momenta_and_decay_clock(cpu_session, tmp_path, towers):
    template, model = trained(towers, steps=3)
    logdir = claim(str(tmp_path), overwrite=False)
    save_state(template, model.optimizer, logdir, epoch=7)
    logdir.release()
    weights, opt_state = template.get_weights(), model.optimizer.get_weights()
    assert opt_state[0] == 3  # SGD's iteration count, which drives lr / (1 + decay * it)

    fresh_template, fresh = trained(towers, steps=0)
    assert load_state(fresh_template, fresh, (tmp_path / 'state.h5').read_bytes()) == 7
    for a, b in zip(fresh_template.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fresh.optimizer.get_weights(), opt_state):
        np.testing.assert_array_equal(a, b)


def test_a_write_that_fails_part_way_keeps_the_old_file(tmp_path):
    import resource
    import signal
    path = str(tmp_path / 'model.h5')
    with open(path, 'w') as f:
        f.write('good')
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, limit[1]))  # `ulimit -f`, in bytes
    try:
        with pytest.raises(WriteFailed, match='model.h5: File too large'):
            write_whole(path, b'x' * 5000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, old)
    assert open(path).read() == 'good'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.h5']


def test_checkpoint_crash_while_saving_keeps_previous_best(cpu_session, tmp_path):
    path = str(tmp_path / 'weights.best.hdf5')
    logdir = claim(str(tmp_path), overwrite=False)
    template = allconvnet.build_model(RECIPES['blog'])
    checkpoint = AtomicModelCheckpoint(logdir, 'weights.best.hdf5', monitor='val_acc', verbose=0,
                                       save_best_only=True, save_weights_only=False, mode='max')
    checkpoint.set_model(template)
    checkpoint.on_epoch_end(0, {'val_acc': 0.2})
    good = open(path, 'rb').read()

    def crash(buffer, overwrite=True):
        buffer.write(b'truncated')
        raise KeyboardInterrupt
    template.save = crash
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(1, {'val_acc': 0.5})
    logdir.release()
    assert open(path, 'rb').read() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ['weights.best.hdf5']
