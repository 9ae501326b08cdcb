"""torchvision's classification models (``torchvision/models/*.py``, ported in the
``_tv_*.py`` modules) at full size, checked the way a PyTorch user relies on them when loading
torchvision's pretrained weights:

- the parameter count equals the ``num_params`` torchvision publishes in each model's weights
  metadata (read from the published files), and state-dict keys / shapes follow the
  published architecture (built on the meta device: no memory, no init cost);
- the ``torch.save`` file of a model's state dict loads with ``fw.load_torch_checkpoint`` and
  ``load_state_dict(strict=True, assign=True)`` into a fresh meta-device model and gives the
  same eval outputs;
- eval forward at a small input gives finite ``(1, 1000)`` logits, and a train-mode forward +
  backward on two images reaches every parameter (googlenet / inception with aux logits).
"""

import math
import warnings

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from . import _tv_classic as C
from . import _tv_convnext_vit as V
from . import _tv_densenet_squeezenet as D
from . import _tv_efficientnet as E
from . import _tv_inception as I
from . import _tv_maxvit as X
from . import _tv_mnasnet_shufflenet as MS
from . import _tv_mobile as M
from . import _tv_regnet as R
from . import _tv_swin as S
from ._checks import write_torch_checkpoint

# name -> (builder, kwargs, published num_params, {state-dict key: shape})
MODELS = {
    "alexnet": (C.alexnet, {}, 61100840, {"features.0.weight": (64, 3, 11, 11),
                                          "classifier.6.weight": (1000, 4096)}),
    "vgg11": (C.vgg11, {}, 132863336, {"features.0.weight": (64, 3, 3, 3),
                                       "classifier.0.weight": (4096, 25088)}),
    "vgg11_bn": (C.vgg11_bn, {}, 132868840, {"features.1.running_var": (64,),
                                             "classifier.6.bias": (1000,)}),
    "vgg16": (C.vgg16, {}, 138357544, {"features.28.weight": (512, 512, 3, 3)}),
    "vgg16_bn": (C.vgg16_bn, {}, 138365992, {"features.40.weight": (512, 512, 3, 3),
                                             "features.41.running_mean": (512,)}),
    "resnet18": (C.resnet18, {}, 11689512, {"layer1.0.conv1.weight": (64, 64, 3, 3),
                                            "layer4.1.bn2.num_batches_tracked": (),
                                            "fc.weight": (1000, 512)}),
    "resnet50": (C.resnet50, {}, 25557032, {"layer1.0.downsample.0.weight": (256, 64, 1, 1),
                                            "layer4.2.conv3.weight": (2048, 512, 1, 1),
                                            "fc.weight": (1000, 2048)}),
    "resnext50_32x4d": (C.resnext50_32x4d, {}, 25028904,
                        {"layer1.0.conv2.weight": (128, 4, 3, 3)}),
    "wide_resnet50_2": (C.wide_resnet50_2, {}, 68883240,
                        {"layer1.0.conv2.weight": (128, 128, 3, 3)}),
    "densenet121": (D.densenet121, {}, 7978856, {
        "features.denseblock1.denselayer1.norm1.weight": (64,),
        "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
        "features.norm5.weight": (1024,), "classifier.weight": (1000, 1024)}),
    "squeezenet1_0": (D.squeezenet1_0, {}, 1248424, {"features.0.weight": (96, 3, 7, 7),
                                                     "features.3.squeeze.weight": (16, 96, 1, 1),
                                                     "classifier.1.weight": (1000, 512, 1, 1)}),
    "squeezenet1_1": (D.squeezenet1_1, {}, 1235496, {"features.0.weight": (64, 3, 3, 3)}),
    # the published weights drop the aux heads (torchvision's builder does it after loading)
    "googlenet": (I.googlenet, {"aux_logits": False, "init_weights": True}, 6624904, {
        "conv1.conv.weight": (64, 3, 7, 7), "inception3a.branch2.1.conv.weight": (128, 96, 3, 3),
        "inception5b.branch4.1.bn.running_var": (128,), "fc.weight": (1000, 1024)}),
    "inception_v3": (I.inception_v3, {"init_weights": True}, 27161264, {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Mixed_6e.branch7x7_2.conv.weight": (192, 192, 1, 7),
        "AuxLogits.fc.weight": (1000, 768), "fc.weight": (1000, 2048)}),
    "mobilenet_v2": (M.mobilenet_v2, {}, 3504872, {"features.1.conv.0.0.weight": (32, 1, 3, 3),
                                                   "features.18.1.weight": (1280,),
                                                   "classifier.1.weight": (1000, 1280)}),
    "mobilenet_v3_large": (M.mobilenet_v3_large, {}, 5483032, {
        "features.4.block.2.fc1.weight": (24, 72, 1, 1), "classifier.0.weight": (1280, 960)}),
    "mobilenet_v3_small": (M.mobilenet_v3_small, {}, 2542856, {
        "features.1.block.1.fc1.weight": (8, 16, 1, 1), "classifier.3.weight": (1000, 1024)}),
    "efficientnet_b0": (E.efficientnet_b0, {}, 5288548, {
        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1), "features.8.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280)}),
    "efficientnet_v2_s": (E.efficientnet_v2_s, {}, 21458488, {
        "features.1.0.block.0.0.weight": (24, 24, 3, 3), "features.7.0.weight": (1280, 256, 1, 1)}),
    "shufflenet_v2_x1_0": (MS.shufflenet_v2_x1_0, {}, 2278604, {
        "stage2.0.branch1.0.weight": (24, 1, 3, 3), "stage4.3.branch2.0.weight": (232, 232, 1, 1),
        "conv5.0.weight": (1024, 464, 1, 1)}),
    "mnasnet0_5": (MS.mnasnet0_5, {}, 2218512, {"layers.0.weight": (16, 3, 3, 3),
                                               "layers.8.0.layers.0.weight": (24, 8, 1, 1),
                                               "layers.14.weight": (1280, 160, 1, 1)}),
    "regnet_y_400mf": (R.regnet_y_400mf, {}, 4344144, {
        "stem.0.weight": (32, 3, 3, 3), "trunk_output.block1.block1-0.f.se.fc1.weight": (8, 48, 1, 1),
        "fc.weight": (1000, 440)}),
    "convnext_tiny": (V.convnext_tiny, {}, 28589128, {
        "features.0.0.weight": (96, 3, 4, 4), "features.1.0.layer_scale": (96, 1, 1),
        "features.1.0.block.3.weight": (384, 96), "features.2.1.weight": (192, 96, 2, 2),
        "classifier.2.weight": (1000, 768)}),
    "swin_t": (S.swin_t, {}, 28288354, {
        "features.1.0.attn.relative_position_bias_table": (169, 3),
        "features.1.0.attn.relative_position_index": (2401,),
        "features.2.reduction.weight": (192, 384), "features.5.1.mlp.0.weight": (1536, 384),
        "head.weight": (1000, 768)}),
    "swin_v2_t": (S.swin_v2_t, {}, 28351570, {
        "features.1.0.attn.logit_scale": (3, 1, 1), "features.1.0.attn.cpb_mlp.0.weight": (512, 2),
        "features.1.0.attn.relative_coords_table": (1, 15, 15, 2), "features.2.norm.weight": (192,)}),
    "vit_b_16": (V.vit_b_16, {}, 86567656, {
        "class_token": (1, 1, 768), "conv_proj.weight": (768, 3, 16, 16),
        "encoder.pos_embedding": (1, 197, 768),
        "encoder.layers.encoder_layer_0.ln_1.weight": (768,),
        "encoder.layers.encoder_layer_0.self_attention.in_proj_weight": (2304, 768),
        "encoder.layers.encoder_layer_11.mlp.3.weight": (768, 3072), "heads.head.weight": (1000, 768)}),
    "maxvit_t": (X.maxvit_t, {}, 30919624, {
        "stem.0.0.weight": (64, 3, 3, 3),
        "blocks.0.layers.0.layers.MBconv.layers.conv_a.0.weight": (256, 64, 1, 1),
        "blocks.0.layers.0.layers.window_attention.attn_layer.1.relative_position_bias_table": (169, 2),
        "classifier.5.weight": (1000, 512)}),
}


def _build(name, **extra):
    fn, kwargs, _, _ = MODELS[name]
    return fn(**{**kwargs, **extra})


def _meta(name, **extra):
    with fw.device("meta"):
        return _build(name, **extra)


@pytest.mark.parametrize("name", list(MODELS))
def test_parameter_count_is_the_published_one_and_keys_follow_the_architecture(name):
    published, keys = MODELS[name][2], MODELS[name][3]
    # RegNet computes its widths with tensor ops (.tolist()) while it is built: on the CPU
    model = _build(name) if name == "regnet_y_400mf" else _meta(name)
    assert sum(p.numel() for p in model.parameters()) == published
    sd = model.state_dict()
    for key, shape in keys.items():
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == len(list(model.parameters())) + len(list(model.buffers()))


# ---- real models at a small input: eval, train + backward, checkpoint round trip ------------

# input size and builder overrides; the rest run at 64x64. ViT-B/16's position embedding
# fixes its input: image_size=32 keeps all 12 layers at 768 wide with 5 tokens. MaxViT-T's
# 7x7 partitions need 224x224, Inception-V3's aux head 299x299 in training.
SMALL = {"vgg11": (32, {}), "vgg11_bn": (32, {}), "vgg16": (32, {}), "vgg16_bn": (32, {}),
         "inception_v3": (75, {}), "vit_b_16": (32, {"image_size": 32}), "maxvit_t": (224, {}),
         "googlenet": (64, {"aux_logits": True})}
# seconds each on one core (building 60-140M parameters, or a 224 / 299 input): -m slow
HEAVY = {"alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "wide_resnet50_2", "vit_b_16",
         "maxvit_t"}
TRAIN_FAST = {"resnet18", "squeezenet1_1", "googlenet", "mobilenet_v2", "mobilenet_v3_small",
              "efficientnet_b0", "shufflenet_v2_x1_0", "mnasnet0_5", "regnet_y_400mf"}
CHECKPOINT_FAST = TRAIN_FAST | {"squeezenet1_0", "mobilenet_v3_large"}


def _cases(fast):
    return [pytest.param(n, marks=() if n in fast else pytest.mark.slow) for n in MODELS]


@pytest.fixture(scope="module")
def built(request):
    name = request.param
    size, extra = SMALL.get(name, (64, {}))
    fw.manual_seed(0)
    return name, size, _build(name, **extra)


def _finite(t):
    return bool(np.isfinite(t.detach().numpy()).all())


@pytest.mark.parametrize("built", _cases(set(MODELS) - HEAVY), indirect=True)
def test_eval_forward_small_input_gives_finite_logits(built):
    name, size, model = built
    model.eval()
    fw.manual_seed(1)
    with fw.no_grad():
        out = model(fw.randn(1, 3, size, size))
    assert tuple(out.shape) == (1, 1000) and _finite(out)


@pytest.mark.parametrize("built", _cases(TRAIN_FAST), indirect=True)
def test_train_forward_backward_two_images_reaches_every_parameter(built):
    name, size, model = built
    model.train()
    fw.manual_seed(2)
    size = 299 if name == "inception_v3" else size
    x, y = fw.randn(2, 3, size, size), fw.tensor([3, 7])
    out = model(x)
    if name == "googlenet":  # GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
        assert out.aux_logits1.shape == out.aux_logits2.shape == (2, 1000)
        loss = F.cross_entropy(out.logits, y) + 0.3 * (F.cross_entropy(out.aux_logits1, y)
                                                       + F.cross_entropy(out.aux_logits2, y))
    elif name == "inception_v3":  # InceptionOutputs(logits, aux_logits)
        assert out.aux_logits.shape == (2, 1000)
        loss = F.cross_entropy(out.logits, y) + 0.4 * F.cross_entropy(out.aux_logits, y)
    else:
        loss = F.cross_entropy(out, y)
    assert math.isfinite(loss.item())
    model.zero_grad()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not _finite(p.grad)]
    assert not missing, missing[:5]
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("built", _cases(CHECKPOINT_FAST), indirect=True)
def test_torch_checkpoint_loads_into_a_fresh_model_with_identical_outputs(built, tmp_path):
    name, size, model = built
    model.eval()
    path = write_torch_checkpoint(model.state_dict(), tmp_path / f"{name}.pth")
    sd = fw.load_torch_checkpoint(path)
    extra = SMALL.get(name, (64, {}))[1]
    if name == "regnet_y_400mf":  # built on the CPU (see above): a plain load_state_dict
        fresh = _build(name, **extra)
        fresh.load_state_dict(sd, strict=True)
    else:  # torch's pattern for big checkpoints: build on meta, take the tensors (assign)
        fresh = _meta(name, **extra)
        fresh.load_state_dict(sd, strict=True, assign=True)
    assert all(p.device.type == "cpu" for p in fresh.parameters())
    fresh.eval()
    fw.manual_seed(3)
    x = fw.randn(2, 3, size, size)
    with fw.no_grad():
        np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_small_maxvit_forward_and_backward():
    # the MaxVit code at a size where 2x2 partitions fit (maxvit_t itself is -m slow)
    fw.manual_seed(0)
    model = X.MaxVit(input_size=(64, 64), stem_channels=16, partition_size=2,
                     block_channels=[16, 32, 32, 64], block_layers=[2, 1, 1, 1], head_dim=8,
                     stochastic_depth_prob=0.2)
    model.eval()
    with fw.no_grad():
        out = model(fw.randn(1, 3, 64, 64))
    assert tuple(out.shape) == (1, 1000) and _finite(out)
    model.train()
    x = fw.randn(2, 3, 64, 64)
    F.cross_entropy(model(x), fw.tensor([1, 2])).backward()
    assert all(p.grad is not None and _finite(p.grad) for p in model.parameters())


def test_builders_warn_and_refuse_as_torchvision_does():
    with pytest.warns(FutureWarning, match="default weight initialization of GoogleNet"):
        _meta("googlenet", init_weights=None)
    with pytest.raises(ValueError, match="Unsupported SqueezeNet version"):
        D.SqueezeNet("2_0")
    with pytest.raises(ValueError, match="not divisible by partition size"):
        _meta("maxvit_t", input_size=(64, 64))
    with pytest.raises(ValueError, match="expected value 32 but got 16"):
        C.resnext50_32x4d(groups=16)
    with pytest.raises(AssertionError, match="Wrong image height"):
        V.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                            hidden_dim=8, mlp_dim=16)(fw.randn(1, 3, 48, 48))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _meta("resnet18")  # the models themselves warn about nothing
