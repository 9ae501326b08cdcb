# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""facebookresearch/mae ported to ``fw``: MaskedAutoencoderViT and the global-pool
VisionTransformer (``_mae_model.py``, timm 0.3.2 and util pieces in ``_mae_timm.py``),
``engine_pretrain.train_one_epoch`` / ``engine_finetune.train_one_epoch`` with
``util/misc.py``'s NativeScalerWithGradNormCount, get_grad_norm_ and save_model, and
main_finetune's checkpoint loading (head removal, interpolate_pos_embed, strict=False).

Changed beyond ``torch`` -> ``fw``: ImageFolder / transforms become small synthetic image
sets; MetricLogger / SmoothedValue / tensorboard / DDP are dropped (the loops record their
losses and learning rates in a list); ``from torch._six import inf`` (gone from PyTorch 2)
is ``from framework import inf``; ``torch.cuda.synchronize()`` (which raises without a GPU,
in PyTorch too) is called only when CUDA is available.
"""

import argparse
import math
import sys
from functools import partial

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework import inf

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, grad_leaves
from ._mae_model import MaskedAutoencoderViT, VisionTransformer
from ._mae_timm import (
    add_weight_decay,
    adjust_learning_rate,
    get_2d_sincos_pos_embed,
    interpolate_pos_embed,
    param_groups_lrd,
    trunc_normal_,
)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``
lr_sched = sys.modules[adjust_learning_rate.__module__]  # ``import util.lr_sched as lr_sched``

MAE_TINY = dict(img_size=16, patch_size=4, in_chans=3, embed_dim=16, depth=2, num_heads=2, decoder_embed_dim=16,
                decoder_depth=1, decoder_num_heads=2, mlp_ratio=2., norm_layer=partial(nn.LayerNorm, eps=1e-6))
VIT_TINY = dict(patch_size=4, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2, qkv_bias=True,
                norm_layer=partial(nn.LayerNorm, eps=1e-6))


# ---- util/misc.py -----------------------------------------------------------------------------

class NativeScalerWithGradNormCount:
    state_dict_key = "amp_scaler"

    def __init__(self):
        self._scaler = torch.cuda.amp.GradScaler()

    def __call__(self, loss, optimizer, clip_grad=None, parameters=None, create_graph=False, update_grad=True):
        self._scaler.scale(loss).backward(create_graph=create_graph)
        if update_grad:
            if clip_grad is not None:
                assert parameters is not None
                self._scaler.unscale_(optimizer)  # unscale the gradients of optimizer's assigned params in-place
                norm = torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
            else:
                self._scaler.unscale_(optimizer)
                norm = get_grad_norm_(parameters)
            self._scaler.step(optimizer)
            self._scaler.update()
        else:
            norm = None
        return norm

    def state_dict(self):
        return self._scaler.state_dict()

    def load_state_dict(self, state_dict):
        self._scaler.load_state_dict(state_dict)


NativeScaler = NativeScalerWithGradNormCount


def get_grad_norm_(parameters, norm_type: float = 2.0) -> torch.Tensor:
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = [p for p in parameters if p.grad is not None]
    norm_type = float(norm_type)
    if len(parameters) == 0:
        return torch.tensor(0.)
    device = parameters[0].grad.device
    if norm_type == inf:
        total_norm = max(p.grad.detach().abs().max().to(device) for p in parameters)
    else:
        total_norm = torch.norm(torch.stack([torch.norm(p.grad.detach(), norm_type).to(device) for p in parameters]), norm_type)
    return total_norm


def save_model(args, epoch, model, model_without_ddp, optimizer, loss_scaler):
    to_save = {
        'model': model_without_ddp.state_dict(),
        'optimizer': optimizer.state_dict(),
        'epoch': epoch,
        'scaler': loss_scaler.state_dict(),
        'args': args,
    }
    torch.save(to_save, f"{args.output_dir}/checkpoint-{epoch}.pth")  # (save_on_master)


# ---- engine_pretrain.py / engine_finetune.py --------------------------------------------------

def pretrain_one_epoch(model, data_loader, optimizer, device, epoch, loss_scaler, args=None, log=None):
    model.train(True)
    accum_iter = args.accum_iter

    optimizer.zero_grad()

    for data_iter_step, (samples, _) in enumerate(data_loader):

        # we use a per iteration (instead of per epoch) lr scheduler
        if data_iter_step % accum_iter == 0:
            lr_sched.adjust_learning_rate(optimizer, data_iter_step / len(data_loader) + epoch, args)

        samples = samples.to(device, non_blocking=True)

        with torch.cuda.amp.autocast():
            loss, _, _ = model(samples, mask_ratio=args.mask_ratio)

        loss_value = loss.item()

        if not math.isfinite(loss_value):
            print("Loss is {}, stopping training".format(loss_value))
            sys.exit(1)

        loss /= accum_iter
        loss_scaler(loss, optimizer, parameters=model.parameters(),
                    update_grad=(data_iter_step + 1) % accum_iter == 0)
        if (data_iter_step + 1) % accum_iter == 0:
            optimizer.zero_grad()

        if torch.cuda.is_available():
            torch.cuda.synchronize()

        lr = optimizer.param_groups[0]["lr"]
        log.append((loss_value, lr))  # (metric_logger.update(loss=loss_value, lr=lr))


def finetune_one_epoch(model, criterion, data_loader, optimizer, device, epoch, loss_scaler, max_norm=0, args=None, log=None):
    model.train(True)
    accum_iter = args.accum_iter

    optimizer.zero_grad()

    for data_iter_step, (samples, targets) in enumerate(data_loader):

        # we use a per iteration (instead of per epoch) lr scheduler
        if data_iter_step % accum_iter == 0:
            lr_sched.adjust_learning_rate(optimizer, data_iter_step / len(data_loader) + epoch, args)

        samples = samples.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)

        with torch.cuda.amp.autocast():
            outputs = model(samples)
            loss = criterion(outputs, targets)

        loss_value = loss.item()

        if not math.isfinite(loss_value):
            print("Loss is {}, stopping training".format(loss_value))
            sys.exit(1)

        loss /= accum_iter
        loss_scaler(loss, optimizer, clip_grad=max_norm,
                    parameters=model.parameters(), create_graph=False,
                    update_grad=(data_iter_step + 1) % accum_iter == 0)
        if (data_iter_step + 1) % accum_iter == 0:
            optimizer.zero_grad()

        if torch.cuda.is_available():
            torch.cuda.synchronize()

        min_lr = 10.
        max_lr = 0.
        for group in optimizer.param_groups:
            min_lr = min(min_lr, group["lr"])
            max_lr = max(max_lr, group["lr"])
        log.append((loss_value, min_lr, max_lr))


def _args(**kw):
    d = dict(accum_iter=2, mask_ratio=0.75, lr=2e-3, min_lr=1e-4, warmup_epochs=1, epochs=6, weight_decay=0.05,
             output_dir=".", layer_decay=0.75)
    d.update(kw)
    return argparse.Namespace(**d)


def _images(n=16, size=16, seed=0):
    """Images with a smooth per-sample pattern (so masked patches are predictable from the rest)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    imgs, labels = [], []
    for i in range(n):
        f, ph = rng.uniform(1, 3), rng.uniform(0, 6)
        c = i % 3
        img = np.stack([np.sin(2 * np.pi * f * (xx if c == k else yy) + ph) for k in range(3)]).astype(np.float32)
        imgs.append(img)
        labels.append(c)
    return fw.utils.data.TensorDataset(fw.tensor(np.stack(imgs)), fw.tensor(labels))


# ---- tests ------------------------------------------------------------------------------------

def test_random_masking_against_numpy():
    fw.manual_seed(0)
    m = MaskedAutoencoderViT(**MAE_TINY)
    x = fw.randn(3, 16, 5)
    fw.manual_seed(9)
    x_masked, mask, ids_restore = m.random_masking(x, 0.75)
    fw.manual_seed(9)
    noise = fw.rand(3, 16).numpy()
    keep = np.argsort(noise, 1)[:, :4]
    np.testing.assert_array_equal(x_masked.numpy(), np.take_along_axis(x.numpy(), keep[:, :, None], 1))
    want = np.ones((3, 16), np.float32)
    np.put_along_axis(want, keep, 0, 1)
    np.testing.assert_array_equal(mask.numpy(), want)
    np.testing.assert_array_equal(ids_restore.numpy(), np.argsort(np.argsort(noise, 1), 1))
    assert ids_restore.dtype == fw.int64 and mask.dtype == fw.float32


def test_patchify_unpatchify_and_pos_embed():
    fw.manual_seed(0)
    m = MaskedAutoencoderViT(**MAE_TINY)
    imgs = fw.randn(2, 3, 16, 16)
    p = m.patchify(imgs)
    want = imgs.numpy().reshape(2, 3, 4, 4, 4, 4).transpose(0, 2, 4, 3, 5, 1).reshape(2, 16, 48)
    np.testing.assert_array_equal(p.numpy(), want)
    np.testing.assert_array_equal(m.unpatchify(p).numpy(), imgs.numpy())
    pe = m.pos_embed.detach().numpy()[0]
    assert not m.pos_embed.requires_grad and not pe[0].any()  # the cls token's row is zeros
    np.testing.assert_allclose(pe, get_2d_sincos_pos_embed(16, 4, cls_token=True), rtol=1e-6, atol=1e-7)
    w = m.patch_embed.proj.weight.detach().numpy()  # xavier through w.view: fans (48, 16)
    assert np.abs(w).max() <= math.sqrt(6 / 64) and np.abs(w).max() > math.sqrt(6 / (48 + 256))
    assert m.norm.weight.detach().numpy().tolist() == [1.0] * 16


def test_forward_loss_norm_pix_against_numpy():
    fw.manual_seed(0)
    for norm_pix in (False, True):
        m = MaskedAutoencoderViT(**MAE_TINY, norm_pix_loss=norm_pix)
        imgs = fw.randn(2, 3, 16, 16)
        pred = fw.randn(2, 16, 48)
        mask = (fw.rand(2, 16) > 0.5).float()
        t = imgs.numpy().reshape(2, 3, 4, 4, 4, 4).transpose(0, 2, 4, 3, 5, 1).reshape(2, 16, 48).astype(np.float64)
        if norm_pix:  # var is the unbiased estimate (torch.var's default)
            t = (t - t.mean(-1, keepdims=True)) / np.sqrt(t.var(-1, ddof=1, keepdims=True) + 1e-6)
        per_patch = ((pred.numpy() - t) ** 2).mean(-1)
        want = (per_patch * mask.numpy()).sum() / mask.numpy().sum()
        np.testing.assert_allclose(m.forward_loss(imgs, pred, mask).item(), want, rtol=1e-5)


def test_decoder_puts_mask_tokens_at_the_removed_patches():
    fw.manual_seed(0)
    m = MaskedAutoencoderViT(**MAE_TINY)
    seen = []
    m.decoder_blocks[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().numpy()))
    fw.manual_seed(1)
    with fw.no_grad():
        latent, mask, ids_restore = m.forward_encoder(fw.randn(2, 3, 16, 16), 0.75)
        m.forward_decoder(latent, ids_restore)
        emb = m.decoder_embed(latent).numpy()
    x = seen[0] - m.decoder_pos_embed.detach().numpy()
    tok = m.mask_token.detach().numpy()[0, 0]
    for b in range(2):
        removed = mask.numpy()[b] == 1
        np.testing.assert_allclose(x[b, 1:][removed], np.broadcast_to(tok, (12, 16)), rtol=1e-5, atol=1e-6)
        kept = np.argsort(ids_restore.numpy()[b])[:4]  # ids_shuffle[:4]: the kept patches, in order
        np.testing.assert_allclose(x[b, 1:][kept], emb[b, 1:], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(x[b, 0], emb[b, 0], rtol=1e-5, atol=1e-6)


def _fixed_mask_loss(model, imgs):
    fw.manual_seed(77)
    with fw.no_grad():
        return model(imgs, mask_ratio=0.75)[0].item()


def test_pretraining_lowers_the_loss_and_checkpoints(tmp_path):
    fw.manual_seed(0)
    data = _images(16)
    imgs = fw.stack([data[i][0] for i in range(16)])
    model = MaskedAutoencoderViT(**MAE_TINY, norm_pix_loss=True)
    args = _args(output_dir=str(tmp_path))
    before = _fixed_mask_loss(model, imgs)
    # following timm: set wd as 0 for bias and norm layers
    param_groups = add_weight_decay(model, args.weight_decay)
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr, betas=(0.9, 0.95))
    with pytest.warns(UserWarning, match="CUDA is not available"):
        loss_scaler = NativeScaler()
    loader = fw.utils.data.DataLoader(data, batch_size=4, shuffle=True, drop_last=True)
    log = []
    for epoch in range(args.epochs):
        pretrain_one_epoch(model, loader, optimizer, "cpu", epoch, loss_scaler, args=args, log=log)
    save_model(args, args.epochs - 1, model, model, optimizer, loss_scaler)
    after = _fixed_mask_loss(model, imgs)
    assert len(log) == 24 and after < before - 0.1, (before, after)
    # lr: linear warm-up over the first epoch (set every accum_iter=2 steps), then half-cosine
    assert [round(lr, 6) for _, lr in log[:4]] == [0.0, 0.0, 0.001, 0.001]
    want = 1e-4 + (2e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (5.5 - 1) / 5))
    assert log[-1][1] == pytest.approx(want)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 0.05]
    assert all(p.ndim > 1 for p in optimizer.param_groups[1]["params"])
    ck = torch.load(str(tmp_path / "checkpoint-5.pth"), weights_only=False)
    assert ck["epoch"] == 5 and ck["args"].mask_ratio == 0.75 and ck["scaler"] == {}


def test_grad_norm_helpers():
    fw.manual_seed(0)
    lin = nn.Linear(3, 2)
    lin(fw.randn(4, 3)).pow(2).sum().backward()
    g = [lin.weight.grad.numpy(), lin.bias.grad.numpy()]
    assert get_grad_norm_(lin.parameters()).item() == pytest.approx(np.sqrt(sum((a ** 2).sum() for a in g)), rel=1e-5)
    assert get_grad_norm_(lin.parameters(), inf).item() == pytest.approx(max(np.abs(a).max() for a in g))
    assert get_grad_norm_([]).item() == 0.0


def _pretrain_step_run(compiled):
    fw.manual_seed(0)
    model = MaskedAutoencoderViT(**MAE_TINY, norm_pix_loss=True)
    optimizer = torch.optim.AdamW(add_weight_decay(model, 0.05), lr=1e-3, betas=(0.9, 0.95))
    loss_scaler = NativeScaler()
    data = _images(16)

    def step(samples):  # pretrain_one_epoch's body with accum_iter=1, after the lr update
        with torch.cuda.amp.autocast():
            loss, _, _ = model(samples, mask_ratio=0.75)
        loss_scaler(loss, optimizer, parameters=model.parameters(), update_grad=True)
        optimizer.zero_grad()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    model.train()
    fw.manual_seed(3)  # the masks
    losses = [fn(fw.stack([data[4 * i + j][0] for j in range(4)])).item() for i in range(4)]
    return losses, {k: v.numpy() for k, v in model.state_dict().items()}, fn


def test_compiled_pretrain_step_matches_eager():
    """rand -> argsort -> gather masking, the unshuffle gather, norm_pix_loss on the masked
    patches, GradScaler (disabled on CPU) and AdamW with two weight-decay groups."""
    with pytest.warns(UserWarning):
        assert_compiled_matches_eager(_pretrain_step_run, captures=1, num_recompiles=0, eager_reason=None)


def _np_cubic(t, A=-0.75):
    t = np.abs(t)
    return np.where(t <= 1, ((A + 2) * t - (A + 3)) * t * t + 1,
                    np.where(t < 2, ((A * t - 5 * A) * t + 8 * A) * t - 4 * A, 0.0))


def _np_bicubic_resize(img, out):
    """PyTorch's bicubic (A = -0.75, align_corners=False, border-clamped taps) on (..., H, W)."""
    def matrix(n_in, n_out):
        M = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = (i + 0.5) * n_in / n_out - 0.5
            f = math.floor(src)
            for k in range(-1, 3):
                M[i, min(max(f + k, 0), n_in - 1)] += _np_cubic(src - (f + k))
        return M
    Mh, Mw = matrix(img.shape[-2], out), matrix(img.shape[-1], out)
    return np.einsum("ih,...hw,jw->...ij", Mh, img, Mw)


@pytest.mark.filterwarnings("ignore:.*CUDA is not available")
def test_finetune_loads_the_pretrained_encoder_with_interpolated_pos_embed(tmp_path):
    fw.manual_seed(0)
    mae = MaskedAutoencoderViT(**MAE_TINY)
    args = _args(output_dir=str(tmp_path), global_pool=True, epochs=3, lr=3e-3)
    optimizer = torch.optim.AdamW(mae.parameters())
    save_model(args, 0, mae, mae, optimizer, NativeScaler())
    # main_finetune: a ViT on 24x24 images (36 patches) from the 16x16 (16 patches) MAE
    model = VisionTransformer(global_pool=True, img_size=24, num_classes=3, drop_path_rate=0.1, **VIT_TINY)
    checkpoint = torch.load(str(tmp_path / "checkpoint-0.pth"), map_location='cpu', weights_only=False)
    checkpoint_model = checkpoint['model']
    state_dict = model.state_dict()
    for k in ['head.weight', 'head.bias']:
        if k in checkpoint_model and checkpoint_model[k].shape != state_dict[k].shape:
            del checkpoint_model[k]
    old = checkpoint_model['pos_embed'].numpy().copy()
    interpolate_pos_embed(model, checkpoint_model)
    new = checkpoint_model['pos_embed'].numpy()
    assert new.shape == (1, 37, 16)
    np.testing.assert_array_equal(new[:, 0], old[:, 0])
    grid = old[0, 1:].reshape(4, 4, 16).transpose(2, 0, 1)
    np.testing.assert_allclose(new[0, 1:], _np_bicubic_resize(grid, 6).transpose(1, 2, 0).reshape(36, 16), rtol=1e-5, atol=1e-6)
    msg = model.load_state_dict(checkpoint_model, strict=False)
    assert set(msg.missing_keys) == {'head.weight', 'head.bias', 'fc_norm.weight', 'fc_norm.bias'}
    assert 'mask_token' in msg.unexpected_keys and 'decoder_embed.weight' in msg.unexpected_keys
    np.testing.assert_array_equal(model.blocks[1].attn.qkv.weight.detach().numpy(), mae.blocks[1].attn.qkv.weight.detach().numpy())
    # manually initialize fc layer
    trunc_normal_(model.head.weight, std=2e-5)
    # (a=-2, b=2 are absolute bounds, so with std=2e-5 this is an untruncated normal)
    assert 1e-5 < model.head.weight.detach().numpy().std() < 3e-5

    param_groups = param_groups_lrd(model, args.weight_decay, no_weight_decay_list=model.no_weight_decay(), layer_decay=args.layer_decay)
    scales = sorted({g["lr_scale"] for g in param_groups})
    assert scales == pytest.approx([0.75 ** 3, 0.75 ** 2, 0.75, 1.0])
    optimizer = torch.optim.AdamW(param_groups, lr=args.lr)
    data = _images(12, size=24)
    loader = fw.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    log = []
    for epoch in range(args.epochs):
        finetune_one_epoch(model, torch.nn.CrossEntropyLoss(), loader, optimizer, "cpu", epoch, NativeScaler(), max_norm=1.0, args=args, log=log)
    assert len(log) == 9 and all(np.isfinite([x[0] for x in log]))
    assert log[-1][1] == pytest.approx(log[-1][2] * 0.75 ** 3)  # layer-wise lr decay
    assert np.mean([x[0] for x in log[-3:]]) < np.mean([x[0] for x in log[:3]])


def test_trunc_normal_and_drop_path():
    fw.manual_seed(0)
    t = trunc_normal_(fw.empty(20000), std=1.0, a=-1.0, b=1.5)
    v = t.numpy()
    assert v.min() >= -1.0 and v.max() <= 1.5
    from math import erf, exp, pi, sqrt
    pdf = lambda z: exp(-z * z / 2) / sqrt(2 * pi)
    cdf = lambda z: 0.5 * (1 + erf(z / sqrt(2)))
    assert v.mean() == pytest.approx((pdf(-1.0) - pdf(1.5)) / (cdf(1.5) - cdf(-1.0)), abs=0.02)
    from ._mae_timm import drop_path
    x = fw.ones(1000, 3)
    fw.manual_seed(1)
    y = drop_path(x, 0.25, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)} and abs((y[:, 0] == 0).mean() - 0.25) < 0.05
    assert (y == y[:, :1]).all()  # one decision per sample
    assert drop_path(x, 0.25, training=False) is x


def test_mae_gradcheck_float64():
    """Masking by argsort / gather, the decoder's unshuffle gather, norm_pix_loss: the loss
    through offsets on an image patch and on the decoder's prediction weight."""
    fw.manual_seed(0)
    m = MaskedAutoencoderViT(**{**MAE_TINY, "depth": 1}, norm_pix_loss=True).double()
    imgs = fw.randn(2, 3, 16, 16, dtype=fw.float64)
    w = m.decoder_pred.weight

    def f(dx, dw):
        fw.manual_seed(5)  # the same mask on every call
        out = fw.func.functional_call(m, {"decoder_pred.weight": w + fw.nn.functional.pad(dw, (0, 14, 0, 46))},
                                      (imgs + fw.nn.functional.pad(dx, (0, 14, 0, 14)),))
        return out[0]

    args = grad_leaves(0.1 * fw.randn(2, 3, 2, 2, dtype=fw.float64), 0.1 * fw.randn(2, 2, dtype=fw.float64))
    assert fw.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5)


def test_vit_gradcheck_float64():
    fw.manual_seed(0)
    v = VisionTransformer(global_pool=True, img_size=8, num_classes=3, **{**VIT_TINY, "depth": 1}).double().eval()
    x = grad_leaves(fw.randn(2, 3, 8, 8, dtype=fw.float64))[0]
    assert fw.autograd.gradcheck(lambda x: v(x), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("global_pool", [False, True])
def test_vit_onnx_export_eval(tmp_path, global_pool):
    fw.manual_seed(0)
    model = VisionTransformer(global_pool=global_pool, img_size=16, num_classes=3, drop_path_rate=0.1, **VIT_TINY).eval()
    x = fw.randn(2, 3, 16, 16)
    assert_onnx_export_matches(model, x, tmp_path / "vit.onnx", sub_batch=1, input_names=["x"],
                               dynamic_axes={"x": {0: "b"}})
