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
import tensorflow as tf
from keras import backend as K
from keras.layers import merge
from keras.layers.core import Lambda
from keras.models import Model


# blog: how many devices of a kind the session has, to check the tower count. [Keras 2.0.9 multi_gpu_model]
def count_devices(device='/gpu:%d'):
    """How many devices of the template's type ('GPU' or 'CPU') the Keras session has."""
    kind = 'GPU' if 'gpu' in device.lower() else 'CPU'
    # Session.list_devices(), not device_lib: only the session sees virtual CPUs.
    return sum(1 for d in K.get_session().list_devices() if d.device_type == kind)


# blog: at module level rather than nested in make_parallel, the same function. [keras-extras 23fb548]
def get_slice(data, idx, parts):
    shape = tf.shape(data)
    # blog: TF 1.x takes tf.concat(values, axis); the post's pre-1.0 tf.concat(0, values) fails
    # with "Expected int32, got list containing Tensors" (keras-extras issue #8). [TF 1.15 API;
    # keras-extras 23fb548]
    size = tf.concat([shape[:1] // parts, shape[1:]], axis=0)
    # blog: the same TF 1.x argument order. [TF 1.15 API]
    stride = tf.concat([shape[:1] // parts, shape[1:] * 0], axis=0)
    start = stride * idx
    # blog: the last tower also takes the batch's remainder, which keras-extras dropped.
    # [Keras 2.0.9 multi_gpu_model; keras-extras issue #7]
    if idx == parts - 1:
        size = tf.concat([shape[:1] - start[:1], shape[1:]], axis=0)
    return tf.slice(data, start, size)


# blog: `device` ('/gpu:%d', the post's placement, by default) lets tests and --towers-on-cpu
# put the towers on virtual CPU devices. [repo]
def make_parallel(model, gpu_count, device='/gpu:%d'):
    """One copy of `model` per device, each fed a slice of the batch; outputs joined on /cpu:0."""
    # blog: one device returns the model itself (Keras 1.2.2's merge refuses one input), and
    # more towers than devices fail naming both numbers. [Keras 1.2.2 API; Keras 2.0.9 multi_gpu_model]
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
        # blog: the three lines the published listing lost, from keras-extras. [keras-extras 23fb548]
        outputs_all.append([])

    # Place a copy of the model on each GPU, each getting a slice of the batch
    for i in range(gpu_count):
        # blog: the `device` template, '/gpu:%d' unless the towers are virtual CPUs. [repo]
        with tf.device(device % i):
            with tf.name_scope('tower_%d' % i) as scope:
                inputs = []
                # Slice each input into a piece for processing on this GPU
                for x in model.inputs:
                    input_shape = tuple(x.get_shape().as_list())[1:]
                    slice_n = Lambda(get_slice, output_shape=input_shape,
                                     arguments={'idx': i, 'parts': gpu_count})(x)
                    # blog: a line the published listing lost. [keras-extras 23fb548]
                    inputs.append(slice_n)
                outputs = model(inputs)
                if not isinstance(outputs, list):
                    outputs = [outputs]
                # Save all the outputs for merging back together later
                for l in range(len(outputs)):
                    # blog: a line the published listing lost. [keras-extras 23fb548]
                    outputs_all[l].append(outputs[l])

    # merge outputs on CPU
    with tf.device('/cpu:0'):
        merged = []
        for outputs in outputs_all:
            merged.append(merge(outputs, mode='concat', concat_axis=0))
        # blog: the callbacks (the checkpoint) see the single-device template, whose weights
        # load without the Lambda wrapper. [Keras 2.1.0 multi_gpu_model]
        parallel = Model(input=model.inputs, output=merged)
        # blog: the callbacks (the checkpoint) see the single-device template, whose weights
        # load without the Lambda wrapper. [Keras 2.1.0 multi_gpu_model]
        parallel.callback_model = model
        return parallel
