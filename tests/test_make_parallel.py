"""make_parallel on a session with several CPU devices: same predictions, training, real placement."""
import re

import numpy as np
import pytest
import tensorflow as tf
from keras import backend as K

import allconvnet
from make_parallel import make_parallel
from runkit.recipes import RECIPES


def predict_both(towers, sizes):
    """[(single, parallel) predictions] for a batch of each size, through one model and its
    towers: building them is most of the time."""
    model = allconvnet.build_model(RECIPES['blog'])
    parallel = make_parallel(model, towers, device='/cpu:%d')
    both = []
    for n in sizes:
        x = np.random.RandomState(n).rand(n, 32, 32, 3).astype('float32')
        # batch_size=n: the whole batch goes through the towers in one call.
        both.append((model.predict(x, batch_size=n), parallel.predict(x, batch_size=n)))
    return both


@pytest.mark.parametrize('towers', [2, 3, 4])
def test_parallel_predictions_equal_single_model(cpu_session, towers):
    sizes = [1, 3, 7, 32]  # fewer rows than towers, uneven, the blog's
    for n, (single, parallel) in zip(sizes, predict_both(towers, sizes)):
        assert parallel.shape == (n, 10)
        # Distinct inputs give distinct rows, so a dropped, duplicated or reordered sample of a
        # batch the towers do not divide evenly shows here.
        assert len({tuple(np.round(r, 6)) for r in parallel}) == n
        np.testing.assert_allclose(parallel, single, atol=1e-5, err_msg='batch of %d' % n)


def test_one_tower_returns_the_model_itself(cpu_session):
    model = allconvnet.build_model(RECIPES['blog'])
    assert make_parallel(model, 1) is model


def test_more_towers_than_devices_names_both_numbers(cpu_session):
    with pytest.raises(ValueError) as err:
        make_parallel(allconvnet.build_model(RECIPES['blog']), 5, device='/cpu:%d')
    assert '5' in str(err.value) and 'only 4' in str(err.value)


def test_missing_gpus_are_reported_not_hidden(cpu_session):
    # One more GPU than the session has (none here, some on a GPU machine): soft placement
    # would quietly run the towers on the CPU instead.
    from make_parallel import count_devices
    have = count_devices('/gpu:%d')
    with pytest.raises(ValueError) as err:
        make_parallel(allconvnet.build_model(RECIPES['blog']), have + 2)
    assert 'asked for %d' % (have + 2) in str(err.value) and 'only %d' % have in str(err.value)


def test_training_step_through_towers_changes_shared_weights(cpu_session):
    model = allconvnet.build_model(RECIPES['blog'])
    parallel = make_parallel(model, 3, device='/cpu:%d')
    parallel.compile(loss='categorical_crossentropy', optimizer='sgd', metrics=['accuracy'])
    rng = np.random.RandomState(0)
    x = rng.rand(5, 32, 32, 3).astype('float32')  # 5 does not divide by 3
    y = np.eye(10)[rng.randint(0, 10, 5)]
    before = model.get_weights()
    loss, acc = parallel.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_batch_smaller_than_tower_count_trains(cpu_session):
    # 3 images on 4 towers: the first three towers get empty slices, the last all 3.
    model = allconvnet.build_model(RECIPES['blog'])
    parallel = make_parallel(model, 4, device='/cpu:%d')
    parallel.compile(loss='categorical_crossentropy', optimizer='sgd', metrics=['accuracy'])
    rng = np.random.RandomState(1)
    loss, _ = parallel.train_on_batch(rng.rand(3, 32, 32, 3).astype('float32'),
                                      np.eye(10)[rng.randint(0, 10, 3)])
    assert np.isfinite(loss)


def test_ops_really_run_on_each_device(cpu_session):
    model = allconvnet.build_model(RECIPES['blog'])
    parallel = make_parallel(model, 4, device='/cpu:%d')
    x = np.random.rand(8, 32, 32, 3).astype('float32')
    meta = tf.RunMetadata()
    cpu_session.run(parallel.outputs[0], feed_dict={parallel.inputs[0]: x, K.learning_phase(): 0},
                    options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                    run_metadata=meta)
    placed = {}
    for dev in meta.step_stats.dev_stats:
        # e.g. /job:localhost/replica:0/task:0/device:CPU:2; skip the host-memory pseudo-devices
        where = re.search(r'device:CPU:(\d+)$', dev.device)
        for node in dev.node_stats if where else []:
            # The convolutions are the towers' work; TF may put small helper ops (shapes,
            # folded constants) of a tower's scope wherever it likes.
            if 'Conv2D' in node.timeline_label:
                placed.setdefault(node.node_name.split('/')[0], set()).add('cpu:' + where.group(1))
    for i in range(4):
        assert placed.get('tower_%d' % i) == {'cpu:%d' % i}, placed
