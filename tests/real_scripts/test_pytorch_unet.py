# ruff: noqa: E501, E722  (the ported script's own lines are kept as written)
"""milesial/Pytorch-UNet ported to ``fw``: the model, dice score and evaluate in
``_pytorch_unet.py``; ``train.py``'s train_model and its ``__main__`` setup here.

Changed beyond ``torch`` -> ``fw``: the Carvana / BasicDataset image folders become a small
synthetic dataset of the same ``{'image', 'mask'}`` items with ``mask_values``; wandb
(not torch) becomes a list that records what the script logs (``wandb.Histogram`` /
``wandb.Image`` wrap the same tensors); tqdm is dropped; train_model takes the dataset, the
model width and the checkpoint directory from the caller and returns its losses and
validation scores.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework import optim
from framework.utils.data import DataLoader, Dataset, random_split

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches, grad_leaves
from ._pytorch_unet import (
    Up,
    UNet,
    dice_coeff,
    dice_loss,
    evaluate,
    multiclass_dice_coeff,
)

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``


class SyntheticMasks(Dataset):
    """Stands in for BasicDataset: images with a few discs, masks of their class index."""

    def __init__(self, n, n_classes=2, size=16, seed=0):
        rng = np.random.default_rng(seed)
        self.mask_values = list(range(n_classes))
        yy, xx = np.mgrid[:size, :size]
        self.items = []
        for _ in range(n):
            mask = np.zeros((size, size), np.int64)
            for c in range(1, n_classes):
                cy, cx, r = rng.uniform(3, size - 3), rng.uniform(3, size - 3), rng.uniform(2, 4)
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = c
            img = np.stack([(mask == c).astype(np.float32) * (0.5 + 0.3 * k) for k, c in enumerate([1, 1, n_classes - 1])])
            img = img + 0.1 * rng.standard_normal(img.shape).astype(np.float32)
            self.items.append((img, mask))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        img, mask = self.items[idx]
        return {'image': torch.as_tensor(img.copy()).float().contiguous(),
                'mask': torch.as_tensor(mask.copy()).long().contiguous()}


class _Run:
    """What wandb.init returns, as far as the script uses it."""

    def __init__(self):
        self.logged, self.config = [], {}

    def log(self, d):
        self.logged.append(d)


# ---- train.py ---------------------------------------------------------------------------------

def train_model(
        model,
        device,
        epochs: int = 5,
        batch_size: int = 1,
        learning_rate: float = 1e-5,
        val_percent: float = 0.1,
        save_checkpoint: bool = True,
        img_scale: float = 0.5,
        amp: bool = False,
        weight_decay: float = 1e-8,
        momentum: float = 0.999,
        gradient_clipping: float = 1.0,
        dataset=None, dir_checkpoint=Path('./checkpoints/'),
):
    # 1. Create dataset  (the caller's synthetic dataset instead of CarvanaDataset / BasicDataset)

    # 2. Split into train / validation partitions
    n_val = int(len(dataset) * val_percent)
    n_train = len(dataset) - n_val
    train_set, val_set = random_split(dataset, [n_train, n_val], generator=torch.Generator().manual_seed(0))

    # 3. Create data loaders
    loader_args = dict(batch_size=batch_size, num_workers=os.cpu_count(), pin_memory=True)
    train_loader = DataLoader(train_set, shuffle=True, **loader_args)
    val_loader = DataLoader(val_set, shuffle=False, drop_last=True, **loader_args)

    # (Initialize logging)
    experiment = _Run()  # wandb.init(project='U-Net', resume='allow', anonymous='must')

    logging.info(f'''Starting training:
        Epochs:          {epochs}
        Batch size:      {batch_size}
        Learning rate:   {learning_rate}
        Training size:   {n_train}
        Validation size: {n_val}
        Checkpoints:     {save_checkpoint}
        Device:          {device.type}
        Images scaling:  {img_scale}
        Mixed Precision: {amp}
    ''')

    # 4. Set up the optimizer, the loss, the learning rate scheduler and the loss scaling for AMP
    optimizer = optim.RMSprop(model.parameters(),
                              lr=learning_rate, weight_decay=weight_decay, momentum=momentum, foreach=True)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, 'max', patience=5)  # goal: maximize Dice score
    grad_scaler = torch.cuda.amp.GradScaler(enabled=amp)
    criterion = nn.CrossEntropyLoss() if model.n_classes > 1 else nn.BCEWithLogitsLoss()
    global_step = 0
    losses, val_scores = [], []

    # 5. Begin training
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_loss = 0
        for batch in train_loader:
            images, true_masks = batch['image'], batch['mask']

            assert images.shape[1] == model.n_channels, \
                f'Network has been defined with {model.n_channels} input channels, ' \
                f'but loaded images have {images.shape[1]} channels. Please check that ' \
                'the images are loaded correctly.'

            images = images.to(device=device, dtype=torch.float32, memory_format=torch.channels_last)
            true_masks = true_masks.to(device=device, dtype=torch.long)

            with torch.autocast(device.type if device.type != 'mps' else 'cpu', enabled=amp):
                masks_pred = model(images)
                if model.n_classes == 1:
                    loss = criterion(masks_pred.squeeze(1), true_masks.float())
                    loss += dice_loss(F.sigmoid(masks_pred.squeeze(1)), true_masks.float(), multiclass=False)
                else:
                    loss = criterion(masks_pred, true_masks)
                    loss += dice_loss(
                        F.softmax(masks_pred, dim=1).float(),
                        F.one_hot(true_masks, model.n_classes).permute(0, 3, 1, 2).float(),
                        multiclass=True
                    )

            optimizer.zero_grad(set_to_none=True)
            grad_scaler.scale(loss).backward()
            grad_scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clipping)
            grad_scaler.step(optimizer)
            grad_scaler.update()

            global_step += 1
            epoch_loss += loss.item()
            losses.append(loss.item())
            experiment.log({
                'train loss': loss.item(),
                'step': global_step,
                'epoch': epoch
            })

            # Evaluation round
            division_step = (n_train // (5 * batch_size))
            if division_step > 0:
                if global_step % division_step == 0:
                    histograms = {}
                    for tag, value in model.named_parameters():
                        tag = tag.replace('/', '.')
                        if not (torch.isinf(value) | torch.isnan(value)).any():
                            histograms['Weights/' + tag] = value.data.cpu()  # (wandb.Histogram)
                        if not (torch.isinf(value.grad) | torch.isnan(value.grad)).any():
                            histograms['Gradients/' + tag] = value.grad.data.cpu()

                    val_score = evaluate(model, val_loader, device, amp)
                    scheduler.step(val_score)
                    val_scores.append(float(val_score))

                    logging.info('Validation Dice score: {}'.format(val_score))
                    try:
                        experiment.log({
                            'learning rate': optimizer.param_groups[0]['lr'],
                            'validation Dice': val_score,
                            'images': images[0].cpu(),
                            'masks': {
                                'true': true_masks[0].float().cpu(),
                                'pred': masks_pred.argmax(dim=1)[0].float().cpu(),
                            },
                            'step': global_step,
                            'epoch': epoch,
                            **histograms
                        })
                    except:
                        pass

        if save_checkpoint:
            Path(dir_checkpoint).mkdir(parents=True, exist_ok=True)
            state_dict = model.state_dict()
            state_dict['mask_values'] = dataset.mask_values
            torch.save(state_dict, str(dir_checkpoint / 'checkpoint_epoch{}.pth'.format(epoch)))
            logging.info(f'Checkpoint {epoch} saved!')
    return dict(losses=losses, val_scores=val_scores, optimizer=optimizer, scheduler=scheduler,
                experiment=experiment, grad_scaler=grad_scaler)


def main(classes=2, bilinear=False, base=4, load=False, **train_kwargs):
    """The ``__main__`` block with its argparse defaults as keyword arguments."""
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    logging.info(f'Using device {device}')

    # Change here to adapt to your data
    # n_channels=3 for RGB images
    # n_classes is the number of probabilities you want to get per pixel
    model = UNet(n_channels=3, n_classes=classes, bilinear=bilinear, base=base)
    model = model.to(memory_format=torch.channels_last)

    logging.info(f'Network:\n'
                 f'\t{model.n_channels} input channels\n'
                 f'\t{model.n_classes} output channels (classes)\n'
                 f'\t{"Bilinear" if model.bilinear else "Transposed conv"} upscaling')

    if load:
        state_dict = torch.load(load, map_location=device)
        del state_dict['mask_values']
        model.load_state_dict(state_dict)
        logging.info(f'Model loaded from {load}')

    model.to(device=device)
    out = train_model(model=model, device=device, **train_kwargs)
    return model, out


# ---- tests ------------------------------------------------------------------------------------

def _np_dice(inp, tgt, axes, eps=1e-6):
    inter = 2 * (inp * tgt).sum(axes)
    sets = inp.sum(axes) + tgt.sum(axes)
    sets = np.where(sets == 0, inter, sets)
    return ((inter + eps) / (sets + eps)).mean()


def test_dice_scores_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(3, 5, 6)).astype(np.float32), (rng.uniform(size=(3, 5, 6)) > 0.5).astype(np.float32)
    b[1] = 0
    a[2] = 0
    b[2] = 0  # an empty pair scores 1
    for rbf, axes in ((False, (-1, -2)), (True, (-1, -2, -3))):
        np.testing.assert_allclose(dice_coeff(fw.tensor(a), fw.tensor(b), rbf).item(), _np_dice(a, b, axes), rtol=1e-5)
    np.testing.assert_allclose(dice_coeff(fw.tensor(a[0]), fw.tensor(b[0])).item(), _np_dice(a[0], b[0], (-1, -2)), rtol=1e-5)
    m, t = rng.uniform(size=(2, 3, 4, 4)).astype(np.float32), rng.uniform(size=(2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(multiclass_dice_coeff(fw.tensor(m), fw.tensor(t), True).item(),
                               _np_dice(m.reshape(6, 4, 4), t.reshape(6, 4, 4), (-1, -2, -3)), rtol=1e-5)
    np.testing.assert_allclose(dice_loss(fw.tensor(m), fw.tensor(t), multiclass=True).item(),
                               1 - _np_dice(m.reshape(6, 4, 4), t.reshape(6, 4, 4), (-1, -2, -3)), rtol=1e-5)
    with pytest.raises(AssertionError):  # reduce_batch_first needs a batch of 2-D masks
        dice_coeff(fw.tensor(m), fw.tensor(t), reduce_batch_first=True)
    assert dice_coeff(fw.ones(2, 4, 4), fw.ones(2, 4, 4)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("bilinear", [False, True])
def test_up_pads_odd_sizes_like_numpy(bilinear):
    """``F.pad(x1, [diffX // 2, diffX - diffX // 2, ...])`` aligns the upsampled map with an
    odd-sized skip connection: zeros on the left/top first, the larger half right/bottom."""
    fw.manual_seed(0)
    up = Up(8, 4, bilinear)
    seen = []
    up.conv.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().numpy()))
    x1, x2 = fw.randn(1, 8 if not bilinear else 4, 3, 2), fw.randn(1, 4, 9, 7)
    assert up(x1, x2).shape == (1, 4, 9, 7)
    cat = seen[0]
    np.testing.assert_array_equal(cat[:, :4], x2.numpy())
    with fw.no_grad():
        u = up.up(x1).numpy()  # (6, 4) -> pad (1, 2) rows, (1, 2) cols
    np.testing.assert_allclose(cat[:, 4:, 1:7, 1:5], u, rtol=1e-6)
    assert not cat[:, 4:, [0, 7, 8]].any() and not cat[:, 4:, :, [0, 5, 6]].any()


def test_bilinear_upsample_align_corners_against_numpy():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    got = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)(fw.tensor(x)).numpy()[0, 0]
    # align_corners=True: output pixel i samples input coordinate i * (n_in - 1) / (n_out - 1)
    ys, xs = np.linspace(0, 1, 4), np.linspace(0, 2, 6)
    rows = np.stack([np.interp(ys, [0, 1], x[0, 0, :, k]) for k in range(3)], 1)  # (4, 3)
    want = np.stack([np.interp(xs, [0, 1, 2], r) for r in rows])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_use_checkpointing_raises_type_error_as_in_torch():
    """``torch.utils.checkpoint`` is a module, so the script's use_checkpointing fails with
    TypeError('module' object is not callable) in PyTorch too; the module's function works."""
    model = UNet(3, 2, base=2)
    with pytest.raises(TypeError, match="not callable"):
        model.use_checkpointing()
    x = fw.randn(1, 3, 16, 16, requires_grad=True)
    y = torch.utils.checkpoint.checkpoint(model.down1, model.inc(x), use_reentrant=False)
    y.sum().backward()
    assert x.grad is not None and model.down1.maxpool_conv[1].double_conv[0].weight.grad is not None


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def test_train_model_lowers_the_loss_and_checkpoints(tmp_path, caplog):
    fw.manual_seed(0)
    data = SyntheticMasks(24)
    with caplog.at_level(logging.INFO):
        model, out = main(classes=2, base=4, dataset=data, epochs=3, batch_size=2, learning_rate=1e-3,
                          val_percent=0.2, momentum=0.9, dir_checkpoint=tmp_path)
    losses = out["losses"]
    assert len(losses) == 30 and all(np.isfinite(losses))  # 20 training images, batches of 2
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses
    assert len(out["val_scores"]) == 15 and all(0 <= v <= 1 for v in out["val_scores"])  # every 2 steps
    assert "Validation Dice score" in caplog.text and "Checkpoint 3 saved!" in caplog.text
    assert out["optimizer"].param_groups[0]["foreach"] is True
    assert out["scheduler"].mode == "max" and out["scheduler"].best == max(out["val_scores"])
    logged = [d for d in out["experiment"].logged if "validation Dice" in d]
    assert "Gradients/outc.conv.weight" in logged[0] and "Weights/inc.double_conv.1.running_mean" not in logged[0]
    # the checkpoint holds mask_values beside the weights; __main__'s --load path restores it
    again, _ = main(classes=2, base=4, load=str(tmp_path / "checkpoint_epoch3.pth"), dataset=data, epochs=0)
    for k, v in _state(model).items():
        np.testing.assert_array_equal(_state(again)[k], v, err_msg=k)
    assert fw.load(str(tmp_path / "checkpoint_epoch3.pth"))["mask_values"] == [0, 1]


def test_one_class_training_and_evaluate_shape_check():
    """n_classes=1 trains with BCEWithLogits + the binary dice loss; evaluate's dice compares a
    (B, 1, H, W) prediction with a (B, H, W) mask and trips its size assertion, as in PyTorch."""
    fw.manual_seed(0)
    with pytest.raises(AssertionError):  # 10 training images: evaluate after every step
        train_model(UNet(3, 1, base=2), torch.device("cpu"), epochs=1, batch_size=2, dataset=SyntheticMasks(12),
                    val_percent=0.2, save_checkpoint=False)
    # 6 training images: no evaluation round
    out = train_model(UNet(3, 1, base=2), torch.device("cpu"), epochs=1, batch_size=2, dataset=SyntheticMasks(7),
                      val_percent=0.2, save_checkpoint=False)
    assert len(out["losses"]) == 3 and all(np.isfinite(out["losses"]))


def test_evaluate_dice_against_numpy():
    fw.manual_seed(0)
    data = SyntheticMasks(4, n_classes=3)
    model = UNet(3, 3, base=2)
    loader = DataLoader(data, batch_size=2)
    score = evaluate(model, loader, torch.device("cpu"), amp=False)
    assert model.training and score.is_inference()
    model.eval()
    want = []
    for batch in loader:
        with fw.no_grad():
            pred = model(batch["image"]).argmax(1).numpy()
        oh = lambda m: np.eye(3, dtype=np.float32)[m].transpose(0, 3, 1, 2)[:, 1:].reshape(-1, 16, 16)
        want.append(_np_dice(oh(pred), oh(batch["mask"].numpy()), (-1, -2)))
    np.testing.assert_allclose(score.item(), np.mean(want), rtol=1e-5)


def test_amp_on_cpu_trains():
    """``--amp`` on a CPU: autocast runs in bfloat16 and the CUDA GradScaler disables itself
    (PyTorch warns and does the same)."""
    fw.manual_seed(0)
    with pytest.warns(UserWarning):
        model, out = main(classes=2, base=2, dataset=SyntheticMasks(7), epochs=1, batch_size=2, amp=True,
                          val_percent=0.2, save_checkpoint=False)
    assert not out["grad_scaler"].is_enabled() and all(np.isfinite(out["losses"]))


def _step_run(compiled, bilinear):
    fw.manual_seed(0)
    model = UNet(3, 2, bilinear=bilinear, base=2).to(memory_format=torch.channels_last)
    optimizer = optim.RMSprop(model.parameters(), lr=1e-3, weight_decay=1e-8, momentum=0.9, foreach=True)
    grad_scaler = torch.cuda.amp.GradScaler(enabled=False)
    criterion = nn.CrossEntropyLoss()
    data = SyntheticMasks(8)

    def step(images, true_masks):
        with torch.autocast('cpu', enabled=False):
            masks_pred = model(images)
            loss = criterion(masks_pred, true_masks)
            loss += dice_loss(F.softmax(masks_pred, dim=1).float(),
                              F.one_hot(true_masks, model.n_classes).permute(0, 3, 1, 2).float(), multiclass=True)
        optimizer.zero_grad(set_to_none=True)
        grad_scaler.scale(loss).backward()
        grad_scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        grad_scaler.step(optimizer)
        grad_scaler.update()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    model.train()
    losses = []
    for i in range(4):
        b = [data[(2 * i + j) % 8] for j in range(2)]
        images = fw.stack([d["image"] for d in b]).to(dtype=torch.float32, memory_format=torch.channels_last)
        losses.append(fn(images, fw.stack([d["mask"] for d in b])).item())
    return losses, _state(model), fn


@pytest.mark.parametrize("bilinear", [False, True])
def test_compiled_train_step_matches_eager(bilinear):
    """BatchNorm with in-place ReLU, MaxPool, ConvTranspose2d or bilinear Upsample, F.pad,
    CE + softmax dice loss with one_hot, clip_grad_norm_ and foreach RMSprop with momentum."""
    assert_compiled_matches_eager(lambda c: _step_run(c, bilinear), captures=1, num_recompiles=0, eager_reason=None)


def test_unet_gradcheck_float64():
    """Train-mode BatchNorm (batch statistics down to the 1x1 bottleneck), in-place ReLU,
    MaxPool, ConvTranspose2d / bilinear Upsample and F.pad: through an offset on a patch of
    the input and on the first up-block's first conv weight."""
    fw.manual_seed(0)
    for bilinear in (False, True):
        model = UNet(1, 2, bilinear=bilinear, base=2).double()
        x = fw.randn(2, 1, 16, 16, dtype=fw.float64)
        w = model.up1.conv.double_conv[0].weight

        def f(dx, dw):
            dw = F.pad(dw, (0, 1, 0, 1, 0, w.shape[1] - 1, 0, w.shape[0] - 1))
            return fw.func.functional_call(model, {"up1.conv.double_conv.0.weight": w + dw},
                                           (x + F.pad(dx, (6, 8, 6, 8)),))

        args = grad_leaves(0.1 * fw.randn(2, 1, 2, 2, dtype=fw.float64), 0.1 * fw.randn(1, 1, 2, 2, dtype=fw.float64))
        assert fw.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("bilinear", [False, True])
def test_onnx_export_eval(tmp_path, bilinear):
    fw.manual_seed(0)
    model, _ = main(classes=2, base=2, bilinear=bilinear, dataset=SyntheticMasks(7), epochs=1, batch_size=2,
                    val_percent=0.2, save_checkpoint=False)  # (trained BatchNorm statistics)
    model.eval()
    x = fw.randn(2, 3, 16, 16).to(memory_format=torch.channels_last)
    assert_onnx_export_matches(model, x, tmp_path / "unet.onnx", sub_batch=1, atol=1e-4, input_names=["x"],
                               dynamic_axes={"x": {0: "b"}})
