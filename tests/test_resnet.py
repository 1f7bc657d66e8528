import numpy as np

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
