import keras
import numpy as np
import pytest

from pyimagesearch import resnet


def test_preact_resnet_shape_and_hand_counted_parameters():
    model = resnet.build_preact_resnet(stages=(2, 1), filters=(8, 16, 32), num_classes=10,
                                       input_shape=(8, 8, 3))
    # stem 3x3x3x8 = 216
    # stage 1, projecting module 8 -> 16: BN(8) 32 + 1x1 8->4 32 + BN 16 + 3x3 4->4 144 + BN 16
    #   + 1x1 4->16 64 + shortcut 8->16 128 = 432; plain module 16 -> 16: 64+64+16+144+16+64 = 368
    # stage 2, projecting module 16 -> 32, stride 2: 64+128+32+576+32+256+512 = 1600
    # final BN(32) 128 + Dense 32*10+10 = 330
    assert model.count_params() == 216 + 432 + 368 + 1600 + 128 + 330
    logits = model.predict(np.zeros((3, 8, 8, 3), np.float32), verbose=0)
    assert logits.shape == (3, 10)
    # stride 2 in the second stage only: 8x8 -> 4x4 before pooling
    assert model.get_layer(index=-3).output.shape[1:3] == (4, 4)


def test_fast_resnet_shape_and_hand_counted_parameters():
    model = resnet.build_fast_resnet(widths=(8, 16), num_classes=10, input_shape=(8, 8, 3))
    # stem 2x2x3x24 + 24 = 312; block 8: 3x3 24->8 1728 + BN 32 + 3x3 8->8 576 + BN 32
    # block 16: 3x3 8->16 1152 + BN 64 + 3x3 16->16 2304 + BN 64; Dense 16*10 (no bias) 160
    assert model.count_params() == 312 + 1728 + 32 + 576 + 32 + 1152 + 64 + 2304 + 64 + 160
    assert model.predict(np.zeros((2, 8, 8, 3), np.float32), verbose=0).shape == (2, 10)


def test_the_recipe_s_fast_resnet_size():
    # widths 64/256/256, batch norms with a shift and no scale (beta + moving mean and variance
    # = 3 numbers a channel): stem 2x2x3x24 + 24 = 312;
    # block 64: 3x3 24->64 13,824 + BN 192 + 3x3 64->64 36,864 + BN 192;
    # block 256: 3x3 64->256 147,456 + BN 768 + 3x3 256->256 589,824 + BN 768;
    # block 256: 589,824 + 768 + 589,824 + 768; Dense 256 x 10, no bias: 2,560
    expected = (312 + 13_824 + 192 + 36_864 + 192 + 147_456 + 768 + 589_824 + 768
                + 589_824 + 768 + 589_824 + 768 + 2_560)
    assert resnet.build_fast_resnet(bn_scale=False).count_params() == expected == 1_973_944


def test_fast_resnet_with_a_fixed_stem_kernel():
    kernel = np.random.default_rng(0).normal(size=(2, 2, 3, 24)).astype(np.float32)
    model = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3), stem_kernel=kernel)
    stem = model.get_layer("stem")
    np.testing.assert_array_equal(stem.get_weights()[0], kernel)
    assert not stem.trainable
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    # everything but the stem's 2*2*3*24 kernel and 24 biases and the moving mean and variance
    # of the four BatchNorms (2 * 8 + 2 * 8 + 2 * 16 + 2 * 16 = 96)
    assert trainable == 6424 - 312 - 96


def test_fast_resnet_without_batch_norm_scale():
    model = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3), bn_scale=False,
                                     bn_momentum=0.4)
    norms = [layer for layer in model.layers if "batch_normalization" in layer.name]
    assert [norm.momentum for norm in norms] == [0.4] * 4
    # the 8 + 8 + 16 + 16 gammas of the four BatchNorms are gone
    assert model.count_params() == 6424 - 48


def test_dirac_kernel_hand_worked():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 2, 3)).astype(np.float32)
    dirac = resnet.dirac_kernel(kernel)
    expected = kernel.copy()
    expected[..., :2] = 0  # the first in_channels = 2 filters: the identity on channels 0, 1
    expected[1, 1, 0, 0] = expected[1, 1, 1, 1] = 1
    np.testing.assert_array_equal(dirac, expected)
    np.testing.assert_array_equal(dirac[..., 2], kernel[..., 2])  # the rest untouched
    narrow = resnet.dirac_kernel(rng.normal(size=(3, 3, 3, 2)))  # fewer filters than inputs
    want = np.zeros((3, 3, 3, 2))
    want[1, 1, 0, 0] = want[1, 1, 1, 1] = 1
    np.testing.assert_array_equal(narrow, want)


def block_convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
            and layer.name != "stem"]


def test_dirac_initialised_convs_pass_their_first_channels_through():
    model = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3), dirac_init=True)
    rng = np.random.default_rng(2)
    for conv in block_convs(model):
        in_channels, out_channels = conv.kernel.shape[2], conv.kernel.shape[3]
        inputs = rng.normal(size=(2, 5, 5, in_channels)).astype(np.float32)
        outputs = keras.ops.convert_to_numpy(conv(inputs))
        count = min(in_channels, out_channels)
        np.testing.assert_allclose(outputs[..., :count], inputs[..., :count], atol=1e-6)
        if out_channels > count:  # the remaining filters keep Glorot's random start
            assert np.abs(outputs[..., count:]).mean() > 0.1
    # 24 -> 8 (8 of 24 channels), 8 -> 8, 8 -> 16 (the first 8 filters), 16 -> 16
    assert [conv.kernel.shape[2:] for conv in block_convs(model)] == [
        (24, 8), (8, 8), (8, 16), (16, 16)]
    plain = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3))
    inputs = rng.normal(size=(2, 5, 5, 8)).astype(np.float32)
    assert not np.allclose(keras.ops.convert_to_numpy(block_convs(plain)[1](inputs)), inputs,
                           atol=0.1)


def test_airbench_blocks_have_no_residual_add():
    residual = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3))
    plain = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3), block="airbench")
    adds = [layer for layer in residual.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 2
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert plain.count_params() == residual.count_params() == 6424  # the same weights
    # in the plain net each block's output is its second GELU's, fed straight to the next conv
    convs = block_convs(plain)
    feeding = convs[2].input._keras_history.operation
    assert isinstance(feeding, keras.layers.Activation)
    assert block_convs(residual)[2].input._keras_history.operation is adds[0]
    with pytest.raises(ValueError, match="unknown block"):
        resnet.build_fast_resnet(widths=(8,), input_shape=(8, 8, 3), block="dense")


def test_whitened_stem_with_a_trainable_bias():
    kernel = np.random.default_rng(0).normal(size=(2, 2, 3, 24)).astype(np.float32)
    model = resnet.build_fast_resnet(widths=(8, 16), input_shape=(8, 8, 3), stem_kernel=kernel,
                                     stem_bias=True)
    stem = model.get_layer("stem")
    trainable = {variable.path for variable in model.trainable_weights}
    assert "stem/bias" in trainable and "stem/kernel" not in trainable
    np.testing.assert_array_equal(stem.get_weights()[0], kernel)
    np.testing.assert_array_equal(stem.get_weights()[1], np.zeros(24))
    # the frozen stem's trainable count (test above) plus the 24 biases
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 6424 - 312 - 96 + 24
