"""Recipes: every training hyperparameter in one place; a command-line flag overrides its entry."""

RECIPES = {
    # The default, tuned for a 2-core CPU after Keller Jordan's airbench (2024); docs/recipe.md
    # gives its measured time and accuracy. lr, decay and the shift learning-rate scale were
    # chosen by 5-epoch probes at an earlier commit (results/previous/f96ae48/probes/).
    "fast": dict(
        model="fast_resnet",    # airbench-style residual net, widths 64/256/256, ~2.0M params
        width=1,                # scale of those block widths (resnet.FAST_RESNET_WIDTHS): 0.5
                                # is 32/128/128, about a quarter of the parameters and FLOPs
        epochs=14,              # short, sized to a 2-core CPU's budget, not to convergence
                                # (docs/recipe.md gives the time)
        batch_size=512,         # few steps, high lr, and on a GPU many more images/s than
                                # small batches (results/bench, results/gpu). The training
                                # set is padded to whole batches with copies of a few of its
                                # images (batches.py): one training-step shape, so one
                                # compiled training program
        lr=0.75,                # peak lr, SGD+Nesterov on mean cross-entropy
        schedule="warmup_linear",  # 0.2 * lr rising to lr, then falling to 0.07 * lr
        warmup_fraction=0.23,   # of all steps, as airbench
        momentum=0.85,
        nesterov=True,
        weight_decay=9e-3,      # decoupled: each step scales weights by (1 - lr_t * 9e-3)
        max_shift=2,            # random translation (px, reflect-padded), a layer of the
                                # training model (augment.RandomShiftAndFlip)
        flip=True,              # horizontal flips, in the same layer: True a random half of
                                # each batch, "alternate" each image every other epoch (any
                                # two consecutive epochs show it both ways, as airbench: more
                                # varied than random flips), False none
        tta="flip_translate",   # test-time augmentation: each image, its mirror, and both
                                # moved by one pixel (augment.TTA_VIEWS)
        whiten_stem=True,       # frozen patch-whitening stem (pyimagesearch/whitening.py)
        stem_bias_epochs=0,     # train the whitened stem's bias (kernel frozen) for this
                                # many epochs, then freeze it (optimizer.py), as airbench
                                # (3 there); 0: no trained bias
        bn_momentum=0.4,        # Keras convention: weight of the old running statistics; short
                                # memory, which lookahead needs (airbench's ablations).
                                # airbench94's BatchNorm(momentum=0.6) hands PyTorch 1 - 0.6,
                                # i.e. Keras 0.6
        bn_scale=False,         # batch norms learn a shift (beta) only
        lookahead=True,         # airbench's lookahead averaging (callbacks.Lookahead)
        bn_shift_lr_scale=64,   # batch-norm shifts learn 64x faster (optimizer.py)
        block="residual",       # each block's second conv added to its first (residual);
                                # "airbench": no add, airbench94's conv groups, which rely on
                                # dirac_init to start each block near the identity
        dirac_init=False,       # True: the first filters of each block conv start as the
                                # identity (resnet.dirac_kernel), as airbench; False: Glorot
    ),
    # The 2019 tutorial's setup on the book's ResNet, for reference; not run in full (far too
    # slow on a 2-core CPU).
    "tutorial": dict(
        model="preact_resnet",  # stages (9, 9, 9), filters (64, 64, 128, 256)
        width=1,                # not read by preact_resnet
        epochs=70,
        batch_size=64,
        lr=5e-3,
        schedule="polynomial",  # power 1: linear decay to 0
        warmup_fraction=0.0,
        momentum=0.9,
        nesterov=False,
        weight_decay=1e-3,      # the book's L2 5e-4 (gradient 1e-3 * w), applied decoupled
        max_shift=3,            # ImageDataGenerator(width/height_shift_range=0.1) on 32 px
        flip=True,
        tta="none",
        whiten_stem=False,
        bn_momentum=0.9,
        bn_scale=True,
        lookahead=False,
        bn_shift_lr_scale=1.0,
        stem_bias_epochs=0,     # the book's net has no whitened stem
        block="residual",       # not read by preact_resnet (always residual)
        dirac_init=False,       # not read by preact_resnet
    ),
}
# The label-smoothing study's long regime (docs/study.md): the fast
# network and optimizer without what keeps them from fitting their training images closely -- no
# augmentation, no lookahead averaging -- and more epochs. With few images (--train-size) its
# unsmoothed baseline is over-confident, the regime of Mueller, Kornblith & Hinton (2019).
RECIPES["overfit"] = dict(RECIPES["fast"], epochs=30, max_shift=0, flip=False, lookahead=False)
# The distillation study's student (experiments/distillation_study.sh): `overfit` at half width,
# about a quarter of the teacher's parameters, so that a teacher has something to teach it. Like
# `overfit` it does not augment, which distillation from precomputed teacher logits needs: the
# teacher saw each training image as the student sees it (distillation.py).
RECIPES["overfit_small"] = dict(RECIPES["overfit"], width=0.5)
# `fast` with airbench94's recipe differences (Keller Jordan's legacy/airbench94.py), aiming at
# `fast`'s accuracy in 10 epochs instead of 14: alternating flips, the whitened stem's bias
# trained for the first 3 epochs, batch-norm statistics with a longer memory, and airbench's
# blocks (no residual add, Dirac-initialised convolutions). Label smoothing stays the study
# variable, not one of the changes. What the changes were measured to be worth, together and
# (as far as measured) one at a time, in short CPU probes on a subset of the data: see
# results/probes/airbench/probes.md; full-size runs in docs/recipe.md.
RECIPES["airbench10"] = dict(RECIPES["fast"], epochs=10, flip="alternate", stem_bias_epochs=3,
                             bn_momentum=0.6, block="airbench", dirac_init=True)
# The default: airbench10 with two more epochs, the fewest that reached `fast`'s fourteen-epoch
# accuracy both in the GPU search and in the CPU default runs of docs/recipe.md (no ten-epoch
# candidate did).
RECIPES["airbench12"] = dict(RECIPES["airbench10"], epochs=12)
# airbench10 with one more epoch and a third less weight decay: it reached `fast`'s accuracy in
# the GPU search but not in three CPU runs (docs/recipe.md).
RECIPES["airbench11"] = dict(RECIPES["airbench10"], epochs=11, weight_decay=6e-3)
DEFAULT_RECIPE = "airbench12"
# the entries a command-line flag of the same name overrides (cli.parse_args)
FLAG_OVERRIDES = ("epochs", "batch_size", "lr", "weight_decay")
