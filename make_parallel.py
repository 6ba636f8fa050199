"""make_parallel: the blog's data-parallel tower function, completed.

The blog post prints this function with its body cut off. It comes from
kuza55/keras-extras utils/multi_gpu.py (first version 9b42f09, 2016-08; the
TF >= 1.0 `tf.concat` order arrived in 23fb548, 2017-03-23). Three fixes here
follow later practice, each marked where it happens:
  * the last tower takes the remainder of the batch, as Keras 2.0.9+'s
    `multi_gpu_model` does, so no sample is dropped (keras-extras issues #7, #9);
  * asking for more devices than the session has fails with a clear message
    naming both numbers (again after `multi_gpu_model`);
  * `gpu_count == 1` returns the model unchanged, because Keras 1.2.2's
    `merge` refuses a single input.
`device` is a template for the tower devices; tests set it to '/cpu:%d' on a
session made with `tf.ConfigProto(device_count={'CPU': N})`.
"""
from __future__ import print_function

import tensorflow as tf
from keras import backend as K
from keras.layers import merge
from keras.layers.core import Lambda
from keras.models import Model


def count_devices(device='/gpu:%d'):
    """How many devices of the template's type ('GPU' or 'CPU') the Keras session has."""
    kind = 'GPU' if 'gpu' in device.lower() else 'CPU'
    # Session.list_devices(), not device_lib: only the session sees virtual CPUs.
    return sum(1 for d in K.get_session().list_devices() if d.device_type == kind)


def get_slice(data, idx, parts):
    """Rows [idx * step, (idx + 1) * step) of the batch; the last part also takes the rest."""
    shape = tf.shape(data)
    batch = shape[:1]
    step = batch // parts
    # keras-extras used `batch // parts` rows for every tower and dropped the remainder.
    size = step if idx < parts - 1 else batch - step * idx
    # TF >= 1.0 argument order: tf.concat(values, axis); the blog has tf.concat(0, values).
    begin = tf.concat([step * idx, shape[1:] * 0], axis=0)
    size = tf.concat([size, shape[1:]], axis=0)
    return tf.slice(data, begin, size)


def make_parallel(model, gpu_count, device='/gpu:%d'):
    """One copy of `model` per device, each fed a slice of the batch; outputs joined on /cpu:0."""
    if gpu_count < 1:
        raise ValueError('make_parallel needs gpu_count >= 1, got %d' % gpu_count)
    if gpu_count == 1:
        return model
    available = count_devices(device)
    if gpu_count > available:
        raise ValueError('make_parallel: asked for %d towers on %s devices, but the session has '
                         'only %d' % (gpu_count, device.replace('/', '').split(':')[0].upper(),
                                      available))

    outputs_all = []
    for i in range(len(model.outputs)):
        outputs_all.append([])

    # Place a copy of the model on each device, each getting a slice of the batch
    for i in range(gpu_count):
        with tf.device(device % i):
            with tf.name_scope('tower_%d' % i):
                inputs = []
                # Slice each input into a piece for processing on this device
                for x in model.inputs:
                    input_shape = tuple(x.get_shape().as_list())[1:]
                    slice_n = Lambda(get_slice, output_shape=input_shape,
                                     arguments={'idx': i, 'parts': gpu_count})(x)
                    inputs.append(slice_n)
                outputs = model(inputs)
                if not isinstance(outputs, list):
                    outputs = [outputs]
                # Save all the outputs for merging back together later
                for l in range(len(outputs)):
                    outputs_all[l].append(outputs[l])

    # merge outputs on CPU
    with tf.device('/cpu:0'):
        merged = []
        for outputs in outputs_all:
            merged.append(merge(outputs, mode='concat', concat_axis=0))
        parallel = Model(input=model.inputs, output=merged)
    # Callbacks (the checkpoint) see the template, whose weights load without the
    # Lambda wrapper; Keras 2.1's multi_gpu_model docstring gives the same advice.
    parallel.callback_model = model
    return parallel
