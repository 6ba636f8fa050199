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
    stride = tf.concat([shape[:1] // parts, shape[1:] * 0], axis=0)
    start = stride * idx
    # blog: the last tower also takes the batch's remainder, which keras-extras dropped.
    # [Keras 2.0.9 multi_gpu_model; keras-extras issue #7]
    if idx == parts - 1:
        size = tf.concat([shape[:1] - start[:1], shape[1:]], axis=0)
    return tf.slice(data, start, size)


# blog: a tower whose slice is empty (a batch smaller than the tower count) runs on one row of
# zeros, whose output is cut away again: the oneDNN build's convolutions fail on an empty
# batch. [repo]
def at_least_one_row(piece):
    missing = 1 - tf.minimum(tf.shape(piece)[0], 1)
    rest = tf.zeros(tf.stack([tf.rank(piece) - 1, 2]), tf.int32)
    padded = tf.pad(piece, tf.concat([tf.reshape(tf.stack([0, missing]), [1, 2]), rest], axis=0))
    # The slice's static shape again, which the dynamic padding loses: TensorFlow's graph
    # optimisations (fused convolutions) need it, and the towers then compute as before.
    padded.set_shape(piece.get_shape())
    return padded


# blog: the first rows of a tower's output, as many as its slice had. [repo]
def rows_of(tensors):
    output, piece = tensors
    return output[:tf.shape(piece)[0]]


# blog: `device` ('/gpu:%d', the post's placement, by default) lets tests and --towers-on-cpu
# put the towers on a session's virtual CPU devices ('/cpu:%d'). [repo]
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
        # blog: one list of tower outputs per model output: the first of three lines the
        # published listing lost. [keras-extras 23fb548]
        outputs_all.append([])

    # Place a copy of the model on each GPU, each getting a slice of the batch
    for i in range(gpu_count):
        # blog: the towers on make_parallel's `device` template. [repo]
        with tf.device(device % i):
            with tf.name_scope('tower_%d' % i) as scope:
                inputs = []
                # Slice each input into a piece for processing on this GPU
                for x in model.inputs:
                    input_shape = tuple(x.get_shape().as_list())[1:]
                    slice_n = Lambda(get_slice, output_shape=input_shape,
                                     arguments={'idx': i, 'parts': gpu_count})(x)
                    # blog: the slice is the tower's input: the second line the listing lost.
                    # [keras-extras 23fb548]
                    inputs.append(slice_n)
                # blog: an empty slice runs as one row of zeros (at_least_one_row). [repo]
                slices, inputs = inputs, [Lambda(at_least_one_row, output_shape=input_shape)(s)
                                          for s in inputs]
                outputs = model(inputs)
                if not isinstance(outputs, list):
                    outputs = [outputs]
                # blog: and that row's output is cut away again. [repo]
                outputs = [Lambda(rows_of, output_shape=tuple(o.get_shape().as_list())[1:])(
                    [o, slices[0]]) for o in outputs]
                # Save all the outputs for merging back together later
                for l in range(len(outputs)):
                    # blog: the tower's outputs kept for the merge: the third line the listing
                    # lost. [keras-extras 23fb548]
                    outputs_all[l].append(outputs[l])

    # merge outputs on CPU
    with tf.device('/cpu:0'):
        merged = []
        for outputs in outputs_all:
            merged.append(merge(outputs, mode='concat', concat_axis=0))
        # blog: the callbacks (the checkpoint) see the single-device template, whose weights
        # load without the Lambda wrapper. [Keras 2.1.0 multi_gpu_model]
        parallel = Model(input=model.inputs, output=merged)
        parallel.callback_model = model
        return parallel
