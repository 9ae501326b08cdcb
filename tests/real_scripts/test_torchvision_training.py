"""torchvision's models (the ``_tv_*.py`` ports) in the flows around them:

- loading published weights through the builders (``resnet18(weights=...)`` reads a
  ``torch.save`` file through ``fw.hub`` with its hash checked), including the checkpoints
  torchvision still ships in older layouts: DenseNet's ``norm.1`` keys, ViT's pre-0.13
  ``MLPBlock`` keys (renamed by ``_load_from_state_dict`` from the module version in
  ``_metadata``), MNASNet's version-1 stem; GoogLeNet dropping its aux heads after loading;
  FrozenBatchNorm2d taking a BatchNorm2d checkpoint; IntermediateLayerGetter;
- training steps under ``fw.compile`` against eager (full-size resnet18, mobilenet_v3_small,
  efficientnet_b0, squeezenet1_1; small Swin V1/V2, MaxViT, ViT and ConvNeXt configs);
- eval-mode ONNX export checked in onnxruntime;
- Swin's shifted-window attention and MaxViT's relative attention against NumPy (float64),
  their relative-position tables, StochasticDepth, and gradients by finite differences.
"""

import hashlib
import re
import warnings
from functools import partial

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F
from framework import nn

from . import _tv_classic as C
from . import _tv_convnext_vit as V
from . import _tv_densenet_squeezenet as D
from . import _tv_efficientnet as E
from . import _tv_inception as I
from . import _tv_maxvit as X
from . import _tv_mnasnet_shufflenet as MS
from . import _tv_mobile as M
from . import _tv_ops as O
from . import _tv_swin as S
from ._checks import (assert_compiled_matches_eager, assert_onnx_export_matches, np_of,
                      write_torch_checkpoint)

CATEGORIES = [f"class_{i}" for i in range(1000)]


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(fw.hub, "_hub_dir", None)
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FW_HUB", raising=False)
    return tmp_path / "home" / "hub"


def _publish(tmp_path, state_dict, name, rename=None, **meta):
    """``state_dict`` as torchvision serves weights: ``<name>-<sha256[:8]>.pth`` at a URL."""
    path = write_torch_checkpoint(state_dict, tmp_path / f"{name}.pth", rename)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    served = path.rename(path.with_name(f"{name}-{digest[:8]}.pth"))
    return O.Weights(url=served.as_uri(), meta={"categories": CATEGORIES, **meta})


def _same_eval_outputs(a, b, size=64, batch=2):
    a.eval()
    b.eval()
    x = fw.randn(batch, 3, size, size)
    with fw.no_grad():
        np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


# ---- the pretrained-weights flows ---------------------------------------------------------

def test_resnet18_weights_load_through_the_hub_with_the_hash_checked(hub_dir, tmp_path):
    fw.manual_seed(0)
    src = C.resnet18()
    weights = _publish(tmp_path, src.state_dict(), "resnet18")
    model = C.resnet18(weights=weights, progress=False)
    assert (hub_dir / "checkpoints").exists()
    _same_eval_outputs(model, src)
    with pytest.raises(ValueError, match="'num_classes' expected value 1000 but got 10"):
        C.resnet18(weights=weights, num_classes=10)
    tampered = tmp_path / "resnet18-00000000.pth"
    tampered.write_bytes(b"not the published file")
    bad = O.Weights(url=tampered.as_uri(), meta={"categories": CATEGORIES})
    with pytest.raises(fw.serialization.CheckpointError, match="expected '00000000'"):
        C.resnet18(weights=bad, progress=False)


def test_densenet_checkpoint_with_the_old_norm_dot_1_keys(hub_dir, tmp_path):
    # densenet121-a639ec97.pth (2017) spells features.denseblock1.denselayer1.norm1 as
    # "norm.1" and predates BatchNorm's num_batches_tracked and the _metadata versions:
    # torchvision renames the keys, BatchNorm (version None < 2) adds the counter
    fw.manual_seed(0)
    src = D.densenet121()
    src.train()
    src(fw.randn(2, 3, 32, 32))  # running statistics away from their init
    legacy = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    old = {k: re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)
           for k in legacy}
    assert old["features.denseblock1.denselayer1.norm1.weight"] == \
        "features.denseblock1.denselayer1.norm.1.weight"
    weights = _publish(tmp_path, legacy, "densenet121", rename=old)
    model = D.densenet121(weights=weights, progress=False)
    assert model.features.norm0.num_batches_tracked.item() == 0
    _same_eval_outputs(model, src, size=32)


def _small_vit(**kw):
    return V.VisionTransformer(image_size=kw.pop("image_size", 32), patch_size=8, num_layers=2,
                               num_heads=2, hidden_dim=16, mlp_dim=32, **kw)


def test_vit_checkpoint_from_before_the_mlp_block_rename(tmp_path):
    # torchvision < 0.13 saved MLPBlock's layers as linear_1 / linear_2 (module version 1);
    # MLPBlock._load_from_state_dict renames them, reading the version from _metadata
    fw.manual_seed(0)
    src = _small_vit()
    sd = src.state_dict()
    old = {k: k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2.") for k in sd}
    for i in range(2):
        sd._metadata[f"encoder.layers.encoder_layer_{i}.mlp"]["version"] = 1
    loaded = fw.load_torch_checkpoint(write_torch_checkpoint(sd, tmp_path / "old.pth", old))
    assert "encoder.layers.encoder_layer_0.mlp.linear_1.weight" in loaded
    assert loaded._metadata["encoder.layers.encoder_layer_0.mlp"]["version"] == 1
    model = _small_vit()
    model.load_state_dict(loaded, strict=True)
    _same_eval_outputs(model, src, size=32)
    # a version-2 MLPBlock keeps its keys: the same old names are then unexpected
    for i in range(2):
        sd._metadata[f"encoder.layers.encoder_layer_{i}.mlp"]["version"] = 2
    loaded = fw.load_torch_checkpoint(write_torch_checkpoint(sd, tmp_path / "v2.pth", old))
    with pytest.raises(RuntimeError, match="mlp.linear_1.weight"):
        _small_vit().load_state_dict(loaded, strict=True)


def test_mnasnet_reads_its_version_from_the_checkpoint_metadata(tmp_path):
    fw.manual_seed(0)
    src = MS.mnasnet0_5()
    loaded = fw.load_torch_checkpoint(write_torch_checkpoint(src.state_dict(), tmp_path / "v2.pth"))
    assert loaded._metadata[""]["version"] == 2
    model = MS.mnasnet0_5()
    model.load_state_dict(loaded)
    _same_eval_outputs(model, src, size=32)
    with pytest.raises(ValueError, match="version shluld be set to 1 or 2 instead of None"):
        MS.mnasnet0_5().load_state_dict(dict(loaded))  # a plain dict carries no versions
    # a version-1 checkpoint (fixed 32-16 stem): the model patches its stem and warns
    v1 = MS.mnasnet0_5()
    with pytest.warns(UserWarning, match="previous version"):
        v1._load_from_state_dict({}, "", {"version": 1}, False, [], [], [])
    assert v1.layers[0].out_channels == 32 and v1.state_dict()._metadata[""]["version"] == 1
    loaded = fw.load_torch_checkpoint(write_torch_checkpoint(v1.state_dict(), tmp_path / "v1.pth"))
    model = MS.mnasnet0_5()
    with pytest.warns(UserWarning, match="previous version"):
        model.load_state_dict(loaded, strict=True)
    _same_eval_outputs(model, v1, size=32)


def test_googlenet_weights_drop_the_aux_heads_and_transform_the_input(hub_dir, tmp_path):
    fw.manual_seed(0)
    src = I.googlenet(init_weights=True, transform_input=True)  # aux heads included
    weights = _publish(tmp_path, src.state_dict(), "googlenet")
    model = I.googlenet(weights=weights, progress=False)
    assert model.aux1 is None and model.aux2 is None and not model.aux_logits
    assert model.transform_input
    _same_eval_outputs(model, src)
    model.train()
    assert isinstance(model(fw.randn(2, 3, 64, 64)), fw.Tensor)  # no GoogLeNetOutputs


def test_frozen_batchnorm_takes_a_batchnorm_checkpoint_and_matches_numpy():
    fw.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    bn(fw.randn(8, 4, 3, 3) * 2 + 1)  # running stats and num_batches_tracked move
    with fw.no_grad():
        bn.weight.normal_()
        bn.bias.normal_()
    frozen = O.FrozenBatchNorm2d(4)
    frozen.load_state_dict(bn.state_dict(), strict=True)  # num_batches_tracked dropped
    x = fw.randn(2, 4, 5, 5)
    p = {k: v.numpy().astype(np.float64)[None, :, None, None]
         for k, v in bn.state_dict().items() if v.dim()}
    want = (x.numpy() - p["running_mean"]) / np.sqrt(p["running_var"] + 1e-5) * p["weight"] \
        + p["bias"]
    np.testing.assert_allclose(frozen(x).numpy(), want, rtol=1e-5, atol=1e-5)
    bn.eval()
    np.testing.assert_allclose(frozen(x).numpy(), bn(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    # detection backbones: a resnet with frozen BN loads a regular resnet checkpoint
    src = C.resnet18()
    model = C.resnet18(norm_layer=O.FrozenBatchNorm2d)
    model.load_state_dict(src.state_dict(), strict=True)
    _same_eval_outputs(model, src, size=32)


def test_intermediate_layer_getter_returns_the_named_stages():
    fw.manual_seed(0)
    model = C.resnet18().eval()
    getter = O.IntermediateLayerGetter(model, {"layer1": "feat1", "layer3": "feat2"})
    assert list(getter.keys())[-1] == "layer3"  # stops after the last requested layer
    x = fw.randn(1, 3, 64, 64)
    with fw.no_grad():
        out = getter(x)
        assert [(k, tuple(v.shape)) for k, v in out.items()] == \
            [("feat1", (1, 64, 16, 16)), ("feat2", (1, 256, 4, 4))]
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        want = model.layer3(model.layer2(model.layer1(h)))
    np.testing.assert_array_equal(out["feat2"].numpy(), want.numpy())
    with pytest.raises(ValueError, match="return_layers are not present"):
        O.IntermediateLayerGetter(model, {"layer9": "x"})


def test_channels_last_resnet_gives_the_same_outputs():
    # the tuning guide's model.to(memory_format=torch.channels_last), input likewise
    fw.manual_seed(0)
    src = C.resnet18()
    model = C.resnet18()
    model.load_state_dict(src.state_dict())
    model = model.to(memory_format=fw.channels_last)
    assert model.conv1.weight.is_contiguous(memory_format=fw.channels_last)
    src.eval()
    model.eval()
    x = fw.randn(2, 3, 32, 32)
    with fw.no_grad():
        np.testing.assert_allclose(model(x.to(memory_format=fw.channels_last)).numpy(),
                                   src(x).numpy(), rtol=1e-5, atol=1e-6)


def test_vit_interpolate_embeddings_for_a_new_image_size():
    fw.manual_seed(0)
    src = _small_vit()  # 4x4 patches + class token
    state = V.interpolate_embeddings(48, 8, src.state_dict(), reset_heads=True)
    pos = state["encoder.pos_embedding"]
    assert tuple(pos.shape) == (1, 37, 16) and not any(k.startswith("heads") for k in state)
    old = src.encoder.pos_embedding.detach().numpy()
    np.testing.assert_array_equal(pos.numpy()[:, 0], old[:, 0])  # class token untouched
    grid_old, grid_new = old[0, 1:].reshape(4, 4, 16), pos.numpy()[0, 1:].reshape(6, 6, 16)
    for (i, j), (a, b) in zip([(0, 0), (0, 5), (5, 0), (5, 5)], [(0, 0), (0, 3), (3, 0), (3, 3)]):
        np.testing.assert_allclose(grid_new[i, j], grid_old[a, b], rtol=1e-5, atol=1e-6)
    model = _small_vit(image_size=48)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert sorted(missing) == ["heads.head.bias", "heads.head.weight"] and not unexpected
    with fw.no_grad():
        assert np.isfinite(model(fw.randn(1, 3, 48, 48)).numpy()).all()


# ---- training under fw.compile against eager ---------------------------------------------

def _train_run(make, x, y, optimizer, steps=3):
    def run(compiled):
        fw.manual_seed(0)
        model = make()
        model.train()
        opt = optimizer(model.parameters())

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = fw.compile(step) if compiled else step
        fw.manual_seed(1)  # dropout / stochastic depth: the same draws in both runs
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a fallback to eager warns
            losses = [fn(x, y).item() for _ in range(steps)]
        run.losses = losses
        return losses, {k: np_of(v).copy() for k, v in model.state_dict().items()}, fn
    return run


SGD = partial(fw.optim.SGD, lr=0.02, momentum=0.9, weight_decay=1e-4)
ADAMW = partial(fw.optim.AdamW, lr=1e-3)

# name -> (builder, optimizer, dtype, whether 3 steps memorising 4 images lower the loss)
COMPILED = {
    "resnet18": (partial(C.resnet18, num_classes=10), SGD, fw.float32, True),
    "mobilenet_v3_small": (partial(M.mobilenet_v3_small, num_classes=10), SGD, fw.float32, True),
    # EfficientNet with batch 4 at 32x32 ends in 1x1 maps under train-mode BatchNorm, which
    # amplifies rounding ~1e7-fold: float32 gradients are ~1e-3 off float64 (eager and compiled
    # alike), so the two runs are compared in float64 (where they agree to ~1e-9); its loss
    # jumps around for the same reason (and its 10-class head starts with large logits)
    "efficientnet_b0": (partial(E.efficientnet_b0, num_classes=10), SGD, fw.float64, False),
    "squeezenet1_1": (partial(D.squeezenet1_1, num_classes=10), SGD, fw.float32, True),
}


@pytest.mark.parametrize("name", list(COMPILED))
def test_full_size_model_training_step_compiled_matches_eager(name):
    make, opt, dtype, learns = COMPILED[name]
    fw.manual_seed(7)
    x, y = fw.randn(4, 3, 32, 32, dtype=dtype), fw.tensor([0, 3, 5, 9])
    build = (lambda: make().to(dtype)) if dtype is fw.float64 else make
    tol = dict(rtol=1e-6, atol=1e-8) if dtype is fw.float64 else dict(rtol=1e-4, atol=1e-5)
    run = _train_run(build, x, y, opt)
    assert_compiled_matches_eager(run, captures=1, num_recompiles=0, eager_reason=None, **tol)
    assert all(np.isfinite(run.losses))
    assert run.losses[-1] < run.losses[0] or not learns, run.losses


def _tiny_swin(v2=False):
    extra = dict(block=S.SwinTransformerBlockV2, downsample_layer=S.PatchMergingV2) if v2 else {}
    # 12x12 input, 2x2 patches: 6x6 tokens padded to 8x8 for 4x4 windows (shifted by 2), then
    # 3x3 after patch merging (padded to 4x4: one window, no shift)
    return S.SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                             window_size=[4, 4], stochastic_depth_prob=0.2, num_classes=5,
                             **extra)


TINY = {
    "swin": (_tiny_swin, 12, ADAMW),
    "swin_v2": (partial(_tiny_swin, v2=True), 12, ADAMW),
    # SGD: MBConv's pre_norm bias feeds a 1x1 conv and a train-mode BatchNorm, so its exact
    # gradient is 0 and the computed one rounding noise, which Adam would scale up to lr
    "maxvit": (partial(X.MaxVit, input_size=(32, 32), stem_channels=8, partition_size=2,
                       block_channels=[8, 16, 16], block_layers=[1, 1, 1], head_dim=4,
                       stochastic_depth_prob=0.2, num_classes=5), 32, SGD),
    "vit": (partial(V.VisionTransformer, image_size=16, patch_size=4, num_layers=2, num_heads=2,
                    hidden_dim=16, mlp_dim=32, dropout=0.1, num_classes=5), 16, ADAMW),
    "convnext": (partial(V.ConvNeXt, [V.CNBlockConfig(8, 16, 2), V.CNBlockConfig(16, None, 1)],
                         stochastic_depth_prob=0.3, num_classes=5), 16, ADAMW),
}


@pytest.mark.parametrize("name", list(TINY))
def test_small_transformer_training_step_compiled_matches_eager(name):
    make, size, optimizer = TINY[name]
    fw.manual_seed(7)
    x, y = fw.randn(4, 3, size, size), fw.tensor([0, 1, 2, 4])
    assert_compiled_matches_eager(_train_run(make, x, y, optimizer), captures=1,
                                  num_recompiles=0, eager_reason=None, rtol=1e-4, atol=1e-5)


# ---- ONNX export in eval mode ------------------------------------------------------------

ONNX = {
    "resnet18": (C.resnet18, 64),
    "mobilenet_v3_small": (M.mobilenet_v3_small, 64),
    "efficientnet_b0": (E.efficientnet_b0, 64),
    "shufflenet_v2_x1_0": (MS.shufflenet_v2_x1_0, 64),
    "googlenet": (partial(I.googlenet, init_weights=True), 64),
    "convnext_small_config": (TINY["convnext"][0], 16),
    "swin_small_config": (_tiny_swin, 12),
    "swin_v2_small_config": (partial(_tiny_swin, v2=True), 12),
    "vit_small": (_small_vit, 32),
    "maxvit_small": (TINY["maxvit"][0], 32),
}


FULL_SIZE_ONNX = {"convnext_tiny": (V.convnext_tiny, 64), "swin_t": (S.swin_t, 64)}


@pytest.mark.parametrize("name", list(ONNX) + [  # 110 MB exports: ~10 s each
    pytest.param(n, marks=pytest.mark.slow) for n in FULL_SIZE_ONNX])
def test_onnx_export_eval_mode_matches_onnxruntime(name, tmp_path):
    make, size = ONNX[name] if name in ONNX else FULL_SIZE_ONNX[name]
    fw.manual_seed(0)
    model = make()
    model.train()
    with fw.no_grad():
        model(fw.randn(4, 3, size, size))  # non-trivial BatchNorm running statistics
    model.eval()
    x = fw.randn(2, 3, size, size)
    assert_onnx_export_matches(model, x, tmp_path / f"{name}.onnx", rtol=1e-4, atol=1e-4,
                               sub_batch=1, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
