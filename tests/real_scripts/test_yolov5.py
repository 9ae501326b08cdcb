# ruff: noqa: E501  (the ported script's own lines are kept as written)
"""ultralytics/yolov5 ported to ``fw``: the model (``_yolov5_model.py``: models/common.py,
models/yolo.py, utils/torch_utils.py), the loss (``_yolov5_loss.py``: utils/loss.py,
utils/metrics.py's bbox_iou), and here ``train.py``'s loop body (warmup by np.interp, SGD
with nesterov and three parameter groups, LambdaLR, clip_grad_norm_, ModelEMA),
``utils/dataloaders.py``'s item tail and collate_fn, ``utils/general.py``'s
non_max_suppression and ``export.py``'s ONNX path.

Changed beyond the ``torch`` -> ``fw`` rename: ``models/yolov5n.yaml`` is the dict ``CFG``
(its layers as written; nc=2 and width_multiple 0.125 keep it tiny); the dataset is a few
synthetic images with coloured boxes (no mosaic / HSV / letterbox augmentation); train.py's
loop takes its data, step count and an optional compiled model from the caller; the
GradScaler and autocast are disabled (``amp=False``, what train.py uses on a CPU); the
progress bar, loggers, callbacks, DDP (RANK) and multi-scale branches are dropped.
``torchvision.ops.nms`` is not torch: :func:`nms` below is a small greedy loop in fw ops,
checked against a NumPy greedy NMS; non_max_suppression's merge-NMS branch (off in the
script, ``merge = False``) needs ultralytics' box_iou and is left out, and its LOGGER
warning is a ``warnings.warn``.

Compiling: ComputeLoss.build_targets filters targets by data-dependent boolean masks
(``t = t[j]``), which a capture cannot express (torch.compile breaks the graph there too);
a compiled whole training step therefore runs eagerly with a warning naming the
``nonzero()`` line, and the compiled variant tested here compiles the model
(``fw.compile(model)``: compiled forward and backward) with the loss, backward and step eager.
"""

import math
import time
import warnings
from copy import deepcopy

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.optim import lr_scheduler
from framework.utils.data import DataLoader, Dataset

from ._checks import assert_stats, np_of
from ._yolov5_numpy import np_ciou, np_decode, np_nms, np_non_max_suppression
from ._yolov5_loss import ComputeLoss, bbox_iou, xywh2xyxy
from ._yolov5_model import (
    C3,
    SPPF,
    Contract,
    Conv,
    Detect,
    DetectionModel,
    Focus,
    ModelEMA,
    de_parallel,
    parse_model,
    smart_optimizer,
)

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``

# models/yolov5n.yaml as the dict DetectionModel also takes (nc and width_multiple made tiny)
CFG = {
    "nc": 2,  # number of classes
    "depth_multiple": 0.33,  # model depth multiple
    "width_multiple": 0.125,  # layer channel multiple
    "anchors": [
        [10, 13, 16, 30, 33, 23],  # P3/8 small-object anchors
        [30, 61, 62, 45, 59, 119],  # P4/16 medium-object anchors
        [116, 90, 156, 198, 373, 326],  # P5/32 large-object anchors
    ],
    # YOLOv5 v6.0 backbone: [from, number, module, args]
    "backbone": [
        [-1, 1, "Conv", [64, 6, 2, 2]],  # 0-P1/2
        [-1, 1, "Conv", [128, 3, 2]],  # 1-P2/4
        [-1, 3, "C3", [128]],
        [-1, 1, "Conv", [256, 3, 2]],  # 3-P3/8
        [-1, 6, "C3", [256]],
        [-1, 1, "Conv", [512, 3, 2]],  # 5-P4/16
        [-1, 9, "C3", [512]],
        [-1, 1, "Conv", [1024, 3, 2]],  # 7-P5/32
        [-1, 3, "C3", [1024]],
        [-1, 1, "SPPF", [1024, 5]],  # 9
    ],
    # YOLOv5 v6.0 head
    "head": [
        [-1, 1, "Conv", [512, 1, 1]],
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 6], 1, "Concat", [1]],  # cat backbone P4
        [-1, 3, "C3", [512, False]],  # 13
        [-1, 1, "Conv", [256, 1, 1]],
        [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
        [[-1, 4], 1, "Concat", [1]],  # cat backbone P3
        [-1, 3, "C3", [256, False]],  # 17 (P3/8-small)
        [-1, 1, "Conv", [256, 3, 2]],
        [[-1, 14], 1, "Concat", [1]],  # cat head P4
        [-1, 3, "C3", [512, False]],  # 20 (P4/16-medium)
        [-1, 1, "Conv", [512, 3, 2]],
        [[-1, 10], 1, "Concat", [1]],  # cat head P5
        [-1, 3, "C3", [1024, False]],  # 23 (P5/32-large)
        [[17, 20, 23], 1, "Detect", ["nc", "anchors"]],  # Detect(P3, P4, P5)
    ],
}

# data/hyps/hyp.scratch-low.yaml (the keys train.py and ComputeLoss read)
HYP = {
    "lr0": 0.01, "lrf": 0.01, "momentum": 0.937, "weight_decay": 0.0005, "warmup_epochs": 3.0,
    "warmup_momentum": 0.8, "warmup_bias_lr": 0.1, "box": 0.05, "cls": 0.5, "cls_pw": 1.0,
    "obj": 1.0, "obj_pw": 1.0, "iou_t": 0.20, "anchor_t": 4.0, "fl_gamma": 0.0,
}
IMGSZ = 64


# ---- a synthetic dataset with utils/dataloaders.py's item tail and collate_fn -------------------

class SyntheticBoxes(Dataset):
    """``n`` BGR uint8 images with 2-3 filled boxes each: class 0 red-ish, class 1 green-ish."""

    def __init__(self, n=4, imgsz=IMGSZ, seed=0):
        rng = np.random.default_rng(seed)
        self.images, self.labels, self.im_files = [], [], []
        for k in range(n):
            img = np.full((imgsz, imgsz, 3), 114, np.uint8)  # letterbox grey
            boxes = []
            for _ in range(int(rng.integers(2, 4))):
                c = int(rng.integers(0, 2))
                w, h = rng.integers(imgsz // 6, imgsz // 2, 2)
                x0, y0 = rng.integers(0, imgsz - w), rng.integers(0, imgsz - h)
                img[y0:y0 + h, x0:x0 + w] = (40, 40, 220) if c == 0 else (40, 200, 40)
                boxes.append([c, (x0 + w / 2) / imgsz, (y0 + h / 2) / imgsz, w / imgsz, h / imgsz])
            self.images.append(img)
            self.labels.append(np.array(boxes, np.float32))
            self.im_files.append(f"synthetic_{k}.jpg")

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        img, labels = self.images[index], self.labels[index].copy()
        shapes = None
        nl = len(labels)  # number of labels
        labels_out = torch.zeros((nl, 6))
        if nl:
            labels_out[:, 1:] = torch.from_numpy(labels)

        # Convert
        img = img.transpose((2, 0, 1))[::-1]  # HWC to CHW, BGR to RGB
        img = np.ascontiguousarray(img)

        return torch.from_numpy(img), labels_out, self.im_files[index], shapes

    @staticmethod
    def collate_fn(batch):
        """Batches images, labels, paths, and shapes, assigning unique indices to targets in merged label tensor."""
        im, label, path, shapes = zip(*batch)  # transposed
        for i, lb in enumerate(label):
            lb[:, 0] = i  # add target image index for build_targets()
        return torch.stack(im, 0), torch.cat(label, 0), path, shapes


def smart_amp_autocast(enabled=True):
    """Return a torch.amp autocast context manager for PyTorch>=2.4, else torch.cuda.amp autocast context manager."""
    return torch.amp.autocast("cuda", enabled=enabled)  # (utils/torch_utils.py; fw is "PyTorch>=2.4")


def build_model(seed=0, cfg=CFG):
    fw.manual_seed(seed)
    return DetectionModel(deepcopy(cfg))


# ---- train.py (the setup train() does before its loop, and the loop) ---------------------------

def train(hyp, model, dataset, epochs, batch_size=2, compiled_model=None, device="cpu", optimizer="SGD"):
    """train.py's optimizer / scheduler / EMA setup and its epoch loop (one process, amp off).
    ``compiled_model`` (``fw.compile(model)``) replaces ``model`` in the forward only."""
    hyp = dict(hyp)
    nc, imgsz, amp = model.yaml["nc"], IMGSZ, False
    # Optimizer
    nbs = 64  # nominal batch size
    accumulate = max(round(nbs / batch_size), 1)  # accumulate loss before optimizing
    hyp["weight_decay"] *= batch_size * accumulate / nbs  # scale weight_decay
    optimizer = smart_optimizer(model, optimizer, hyp["lr0"], hyp["momentum"], hyp["weight_decay"])

    # Scheduler
    def lf(x):
        """Linear learning rate scheduler function with decay calculated by epoch proportion."""
        return (1 - x / epochs) * (1.0 - hyp["lrf"]) + hyp["lrf"]  # linear

    scheduler = lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)  # plot_lr_scheduler(optimizer, scheduler, epochs)

    # EMA
    ema = ModelEMA(model)
    start_epoch = 0

    # Trainloader
    train_loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=SyntheticBoxes.collate_fn)
    nb = len(train_loader)  # number of batches

    # Model attributes
    nl = de_parallel(model).model[-1].nl  # number of detection layers (to scale hyps)
    hyp["box"] *= 3 / nl  # scale to layers
    hyp["cls"] *= nc / 80 * 3 / nl  # scale to classes and layers
    hyp["obj"] *= (imgsz / 640) ** 2 * 3 / nl  # scale to image size and layers
    hyp["label_smoothing"] = 0.0  # opt.label_smoothing
    model.nc = nc  # attach number of classes to model
    model.hyp = hyp  # attach hyperparameters to model

    # Start training
    nw = max(round(hyp["warmup_epochs"] * nb), 100)  # number of warmup iterations, max(3 epochs, 100 iterations)
    last_opt_step = -1
    scheduler.last_epoch = start_epoch - 1  # do not move
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    compute_loss = ComputeLoss(model)  # init loss class
    forward = compiled_model if compiled_model is not None else model
    losses, lrs = [], []
    for epoch in range(start_epoch, epochs):  # epoch ------------------------------------------------------------------
        model.train()
        mloss = torch.zeros(3, device=device)  # mean losses
        optimizer.zero_grad()
        for i, (imgs, targets, paths, _) in enumerate(train_loader):  # batch -----------------------------------------
            ni = i + nb * epoch  # number integrated batches (since train start)
            imgs = imgs.to(device, non_blocking=True).float() / 255  # uint8 to float32, 0-255 to 0.0-1.0

            # Warmup
            if ni <= nw:
                xi = [0, nw]  # x interp
                # compute_loss.gr = np.interp(ni, xi, [0.0, 1.0])  # iou loss ratio (obj_loss = 1.0 or iou)
                accumulate = max(1, np.interp(ni, xi, [1, nbs / batch_size]).round())
                for j, x in enumerate(optimizer.param_groups):
                    # bias lr falls from 0.1 to lr0, all other lrs rise from 0.0 to lr0
                    x["lr"] = np.interp(ni, xi, [hyp["warmup_bias_lr"] if j == 0 else 0.0, x["initial_lr"] * lf(epoch)])
                    if "momentum" in x:
                        x["momentum"] = np.interp(ni, xi, [hyp["warmup_momentum"], hyp["momentum"]])

            # Forward
            with smart_amp_autocast(amp):
                pred = forward(imgs)  # forward
                loss, loss_items = compute_loss(pred, targets.to(device))  # loss scaled by batch_size

            # Backward
            scaler.scale(loss).backward()

            # Optimize - https://pytorch.org/docs/master/notes/amp_examples.html
            if ni - last_opt_step >= accumulate:
                scaler.unscale_(optimizer)  # unscale gradients
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)  # clip gradients
                scaler.step(optimizer)  # optimizer.step
                scaler.update()
                optimizer.zero_grad()
                if ema:
                    ema.update(model)
                last_opt_step = ni

            # Log
            mloss = (mloss * i + loss_items) / (i + 1)  # update mean losses
            losses.append(loss.item())
            # end batch ------------------------------------------------------------------------------------------------

        # Scheduler
        lr = [x["lr"] for x in optimizer.param_groups]  # for loggers
        lrs.append(lr)
        scheduler.step()
    return {"losses": losses, "mloss": mloss, "lrs": lrs, "ema": ema, "optimizer": optimizer}


# ---- utils/general.py's non_max_suppression, with a torchvision.ops.nms stand-in ---------------

def nms(boxes, scores, iou_threshold):
    """``torchvision.ops.nms`` (not torch) as a greedy loop in fw ops: indices of the kept
    boxes (x1, y1, x2, y2), highest score first."""
    order = scores.argsort(descending=True)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        if order.numel() == 1:
            break
        rest = order[1:]
        xx1 = torch.maximum(boxes[rest, 0], boxes[i, 0])
        yy1 = torch.maximum(boxes[rest, 1], boxes[i, 1])
        xx2 = torch.minimum(boxes[rest, 2], boxes[i, 2])
        yy2 = torch.minimum(boxes[rest, 3], boxes[i, 3])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def non_max_suppression(
    prediction,
    conf_thres=0.25,
    iou_thres=0.45,
    classes=None,
    agnostic=False,
    multi_label=False,
    labels=(),
    max_det=300,
    nm=0,  # number of masks
):
    """Non-Maximum Suppression (NMS) on inference results to reject overlapping detections.

    Returns:
        list of detections, on (n,6) tensor per image [xyxy, conf, cls]
    """
    # Checks
    assert 0 <= conf_thres <= 1, f"Invalid Confidence threshold {conf_thres}, valid values are between 0.0 and 1.0"
    assert 0 <= iou_thres <= 1, f"Invalid IoU {iou_thres}, valid values are between 0.0 and 1.0"
    if isinstance(prediction, (list, tuple)):  # YOLOv5 model in validation mode, output = (inference_out, loss_out)
        prediction = prediction[0]  # select only inference output

    device = prediction.device
    mps = "mps" in device.type  # Apple MPS
    if mps:  # MPS not fully supported yet, convert tensors to CPU before NMS
        prediction = prediction.cpu()
    bs = prediction.shape[0]  # batch size
    nc = prediction.shape[2] - nm - 5  # number of classes
    xc = prediction[..., 4] > conf_thres  # candidates

    # Settings
    # min_wh = 2  # (pixels) minimum box width and height
    max_wh = 7680  # (pixels) maximum box width and height
    max_nms = 30000  # maximum number of boxes into torchvision.ops.nms()
    time_limit = 0.5 + 0.05 * bs  # seconds to quit after
    multi_label &= nc > 1  # multiple labels per box (adds 0.5ms/img)

    t = time.time()
    mi = 5 + nc  # mask start index
    output = [torch.zeros((0, 6 + nm), device=prediction.device)] * bs
    for xi, x in enumerate(prediction):  # image index, image inference
        # Apply constraints
        # x[((x[..., 2:4] < min_wh) | (x[..., 2:4] > max_wh)).any(1), 4] = 0  # width-height
        x = x[xc[xi]]  # confidence

        # Cat apriori labels if autolabelling
        if labels and len(labels[xi]):
            lb = labels[xi]
            v = torch.zeros((len(lb), nc + nm + 5), device=x.device)
            v[:, :4] = lb[:, 1:5]  # box
            v[:, 4] = 1.0  # conf
            v[range(len(lb)), lb[:, 0].long() + 5] = 1.0  # cls
            x = torch.cat((x, v), 0)

        # If none remain process next image
        if not x.shape[0]:
            continue

        # Compute conf
        x[:, 5:] *= x[:, 4:5]  # conf = obj_conf * cls_conf

        # Box/Mask
        box = xywh2xyxy(x[:, :4])  # center_x, center_y, width, height) to (x1, y1, x2, y2)
        mask = x[:, mi:]  # zero columns if no masks

        # Detections matrix nx6 (xyxy, conf, cls)
        if multi_label:
            i, j = (x[:, 5:mi] > conf_thres).nonzero(as_tuple=False).T
            x = torch.cat((box[i], x[i, 5 + j, None], j[:, None].float(), mask[i]), 1)
        else:  # best class only
            conf, j = x[:, 5:mi].max(1, keepdim=True)
            x = torch.cat((box, conf, j.float(), mask), 1)[conf.view(-1) > conf_thres]

        # Filter by class
        if classes is not None:
            x = x[(x[:, 5:6] == torch.tensor(classes, device=x.device)).any(1)]

        # Check shape
        n = x.shape[0]  # number of boxes
        if not n:  # no boxes
            continue
        x = x[x[:, 4].argsort(descending=True)[:max_nms]]  # sort by confidence and remove excess boxes

        # Batched NMS
        c = x[:, 5:6] * (0 if agnostic else max_wh)  # classes
        boxes, scores = x[:, :4] + c, x[:, 4]  # boxes (offset by class), scores
        i = nms(boxes, scores, iou_thres)  # NMS  (torchvision.ops.nms)
        i = i[:max_det]  # limit detections
        # (merge-NMS is off in the script: merge = False)

        output[xi] = x[i]
        if mps:
            output[xi] = output[xi].to(device)
        if (time.time() - t) > time_limit:
            warnings.warn(f"NMS time limit {time_limit:.3f}s exceeded", stacklevel=2)
            break  # time limit exceeded

    return output


# ---- tests ------------------------------------------------------------------------------------

def test_model_build_strides_anchors_and_biases():
    """parse_model's channels, the stride forward, anchors divided by stride, and
    _initialize_biases writing through ``b.data[:, 4] +=`` into the conv's bias."""
    model = build_model(0)
    fw.manual_seed(0)  # the same draws again: parse_model alone gives the biases before init
    plain, save = parse_model(deepcopy(CFG), ch=[3])
    det = model.model[-1]
    assert isinstance(det, Detect) and save == [4, 6, 10, 14, 17, 20, 23]
    np.testing.assert_array_equal(det.stride.numpy(), [8.0, 16.0, 32.0])
    want_anchors = np.array(CFG["anchors"], np.float32).reshape(3, 3, 2) / np.array([8, 16, 32], np.float32)[:, None, None]
    np.testing.assert_allclose(det.anchors.numpy(), want_anchors, rtol=1e-6)
    assert [type(m).__name__ for m in model.model[:10]] == ["Conv", "Conv", "C3", "Conv", "C3", "Conv", "C3", "Conv", "C3", "SPPF"]
    assert [m.cv1.conv.out_channels for m in (model.model[2], model.model[4])] == [8, 16]
    assert len(model.model[4].m) == 2 and len(model.model[6].m) == 3  # depth 0.33 of 6 and 9
    for mi, mp, s in zip(det.m, plain[-1].m, (8, 16, 32)):
        got = mi.bias.detach().numpy().reshape(3, -1) - mp.bias.detach().numpy().reshape(3, -1)
        np.testing.assert_allclose(got[:, 4], math.log(8 / (640 / s) ** 2), rtol=1e-5)
        np.testing.assert_allclose(got[:, 5:], math.log(0.6 / (2 - 0.99999)), rtol=1e-5)
        np.testing.assert_allclose(got[:, :4], 0.0, atol=1e-7)
        assert isinstance(mi.bias, nn.Parameter) and mi.bias.is_leaf
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.03 for m in bns)
    assert Conv.default_act.inplace  # initialize_weights made the shared SiLU in-place
    with fw.no_grad():  # yolo.py --line-profile: each layer timed over 10 runs
        out = model.eval()(fw.zeros(1, 3, 32, 32), profile=True)
    assert out[0].shape == (1, 3 * (16 + 4 + 1), 7)


def test_training_lowers_the_loss():
    """train.py's loop (here with ``--optimizer Adam``): warmup, three parameter groups,
    clip_grad_norm_, the EMA; the loss on the same batches goes down."""
    model = build_model(0)
    out = train(dict(HYP, lr0=0.001), model, SyntheticBoxes(2), epochs=5, batch_size=2, optimizer="Adam")
    losses = out["losses"]
    assert len(losses) == 5 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.01, losses
    # warmup: the bias group's lr falls from warmup_bias_lr, the others rise from 0 (np.interp)
    lrs = np.array(out["lrs"])
    assert lrs[0, 0] > lrs[-1, 0] > lrs[-1, 1] > lrs[0, 1] == 0
    opt = out["optimizer"]
    assert [len(g["params"]) for g in opt.param_groups] == [60, 60, 57]  # biases; conv weights; BN weights
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.0005 * 2 * 32 / 64, 0.0]
    ema = out["ema"]
    assert ema.updates == 3  # np.interp's accumulate (2 from ni=2 on) skipped ni 2 and 4
    assert losses[2] == losses[3]  # no step at ni=2: the same weights (and batch) at ni=3
    assert all(not p.requires_grad for p in ema.ema.parameters())


def test_compiled_model_training_matches_eager():
    """``fw.compile(model)`` in train.py's loop (compiled forward and backward, SGD with
    nesterov and np.float64 hyper-parameters) gives eager's losses, weights and EMA; the whole
    step (build_targets' boolean masks) graph-breaks with a warning and still runs right."""
    def run(compiled):
        model = build_model(0)
        cm = fw.compile(model, mode="always") if compiled else None
        out = train(HYP, model, SyntheticBoxes(4), epochs=2, batch_size=2, compiled_model=cm)
        state = {**{"m." + k: v.numpy().copy() for k, v in model.state_dict().items()},
                 **{"e." + k: v.numpy().copy() for k, v in out["ema"].ema.state_dict().items()}}
        return out["losses"], state, cm

    l_eager, s_eager, _ = run(False)
    l_comp, s_comp, cm = run(True)
    assert_stats(cm, captures=1, num_recompiles=0, eager_reason=None, graph_breaks=[], cache_hits=3)
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-4, atol=1e-6)
    for k in s_eager:
        np.testing.assert_allclose(s_comp[k], s_eager[k], rtol=1e-4, atol=1e-5, err_msg=k)

    model = build_model(0)
    model.hyp = dict(HYP, label_smoothing=0.0)
    compute_loss = ComputeLoss(model)
    imgs, targets, _, _ = SyntheticBoxes.collate_fn([SyntheticBoxes(2)[k] for k in range(2)])
    imgs = imgs.float() / 255

    def step(imgs, targets):
        loss, items = compute_loss(model(imgs), targets)
        loss.backward()
        return loss.detach(), items

    want = step(imgs, targets)
    want_grad = model.model[0].conv.weight.grad.numpy().copy()
    model.zero_grad()
    cstep = fw.compile(step)
    with pytest.warns(UserWarning, match="nonzero"):
        got = cstep(imgs, targets)
    assert "nonzero()" in cstep.stats()["eager_reason"] and "_yolov5_loss.py" in cstep.stats()["eager_reason"]
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.model[0].conv.weight.grad.numpy(), want_grad, rtol=1e-5, atol=1e-7)


def test_inference_decode_against_numpy():
    model = build_model(1).eval()
    imgs = fw.rand(2, 3, IMGSZ, 96)
    with fw.no_grad():
        pred, raw = model(imgs)
    assert pred.shape == (2, 3 * (8 * 12 + 4 * 6 + 2 * 3), 7)
    assert [tuple(r.shape) for r in raw] == [(2, 3, 8, 12, 7), (2, 3, 4, 6, 7), (2, 3, 2, 3, 7)]
    want = np_decode([np_of(r) for r in raw], CFG["anchors"], (8, 16, 32))
    np.testing.assert_allclose(pred.numpy(), want, rtol=1e-5, atol=1e-4)
    grid = model.model[-1].grid[1]
    assert grid.shape == (1, 3, 4, 6, 2) and grid[0, 0, 2, 1].tolist() == [0.5, 1.5]  # (x, y) - 0.5
    # a new size rebuilds the grids (grid[i].shape[2:4] != x[i].shape[2:4])
    with fw.no_grad():
        pred2, raw2 = model(fw.rand(1, 3, 32, 32))
    np.testing.assert_allclose(pred2.numpy(), np_decode([np_of(r) for r in raw2], CFG["anchors"], (8, 16, 32)), rtol=1e-5, atol=1e-4)


def test_fuse_matches_unfused_eval():
    model = build_model(2)
    with fw.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # running stats far from the defaults
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    imgs = fw.rand(1, 3, IMGSZ, IMGSZ)
    with fw.no_grad():
        want = model(imgs)[0].numpy()
    fused = deepcopy(model).fuse()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    conv0 = fused.model[0].conv
    assert conv0.bias is not None and conv0.weight.shape == (8, 3, 6, 6)
    with fw.no_grad():
        got = fused(imgs)[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_onnx_export_eval(tmp_path, dynamic_batch):
    """export.py's run() setup (eval, Detect.export / inplace / dynamic, two dry runs) and
    export_onnx's ``torch.onnx.export`` call, checked in onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    model = build_model(3)
    model.eval()
    for k, m in model.named_modules():
        if isinstance(m, Detect):
            m.inplace = False
            m.dynamic = False
            m.export = True
    im = torch.zeros(1, 3, IMGSZ, IMGSZ)
    for _ in range(2):
        y = model(im)  # dry runs
    assert isinstance(y, tuple) and len(y) == 1
    f = str(tmp_path / "yolov5n.onnx")
    dynamic = {"images": {0: "batch"}, "output0": {0: "batch", 1: "anchors"}} if dynamic_batch else None
    torch.onnx.export(
        model, im, f, verbose=False, opset_version=12, do_constant_folding=True,
        input_names=["images"], output_names=["output0"], dynamic_axes=dynamic or None,
    )
    sess = ort.InferenceSession(f, providers=["CPUExecutionProvider"])
    x = fw.rand(3 if dynamic_batch else 1, 3, IMGSZ, IMGSZ)
    with fw.no_grad():
        want = model(x)[0].numpy()
    (got,) = sess.run(None, {"images": x.numpy()})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-4)


@pytest.mark.xfail(strict=True, raises=fw.errors.ShapeError, reason="GAP: dynamic height/width "
                   "needs H, W divisible by 32 (PyTorch's TorchScript exporter does not check; fw "
                   "proves shapes and has no derived Dim such as 32*Dim('h'))")
def test_onnx_export_dynamic_height_width(tmp_path):
    """export.py --dynamic: batch, height and width dynamic."""
    model = build_model(3).eval()
    model.model[-1].export = model.model[-1].dynamic = True
    dynamic = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 1: "anchors"}}
    torch.onnx.export(model, torch.zeros(1, 3, IMGSZ, IMGSZ), str(tmp_path / "d.onnx"), opset_version=12,
                      input_names=["images"], output_names=["output0"], dynamic_axes=dynamic)


def test_nms_against_numpy():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20, (40, 2))
    boxes = np.concatenate((xy, xy + rng.uniform(5, 20, (40, 2))), 1).astype(np.float32)
    scores = rng.permutation(40).astype(np.float32) / 40
    for thr in (0.1, 0.45, 0.7):
        got = nms(fw.tensor(boxes), fw.tensor(scores), thr)
        want = np_nms(boxes.astype(np.float64), scores, thr)
        np.testing.assert_array_equal(got.numpy(), want)
        assert len(want) < 40


@pytest.mark.parametrize("multi_label", [False, True])
def test_non_max_suppression(multi_label):
    rng = np.random.default_rng(1)
    pred = np.zeros((2, 60, 7), np.float32)
    pred[..., :2] = rng.uniform(0, 64, (2, 60, 2))
    pred[..., 2:4] = rng.uniform(4, 24, (2, 60, 2))
    pred[..., 4:] = rng.uniform(0, 1, (2, 60, 3))
    out = non_max_suppression(fw.tensor(pred), conf_thres=0.25, iou_thres=0.45, multi_label=multi_label)
    assert len(out) == 2
    for got, want in zip(out, np_non_max_suppression(pred, 0.25, 0.45, multi_label), strict=True):
        assert got.shape[1] == 6 and len(got) == len(want) > 0
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-4)
    # classes= keeps one class; a prediction with no candidates gives an empty (0, 6)
    only1 = non_max_suppression(fw.tensor(pred), classes=[1])
    assert all((o[:, 5] == 1).all() for o in only1)
    empty = non_max_suppression(fw.tensor(pred * 0))
    assert [tuple(o.shape) for o in empty] == [(0, 6), (0, 6)]


def test_xywh2xyxy_and_ciou_against_numpy():
    rng = np.random.default_rng(2)
    b = rng.uniform(1, 10, (8, 4))
    np.testing.assert_allclose(xywh2xyxy(fw.tensor(b)).numpy(), np.concatenate((b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2), 1))
    b1, b2 = rng.uniform(1, 5, (8, 4)), rng.uniform(1, 5, (8, 4))
    got = bbox_iou(fw.tensor(b1), fw.tensor(b2), CIoU=True)
    np.testing.assert_allclose(got.numpy()[:, 0], np_ciou(b1, b2), rtol=1e-10)


def test_ciou_gradient_treats_alpha_as_a_constant():
    """CIoU computes its trade-off ``alpha`` under ``torch.no_grad()``: the gradient is that of
    ``iou - (rho2 / c2 + v * alpha)`` with alpha frozen (finite differences of the NumPy
    formula with alpha held at its value), not of the full expression."""
    rng = np.random.default_rng(3)
    b1, b2 = rng.uniform(1, 5, (6, 4)), rng.uniform(1, 5, (6, 4))
    t1 = fw.tensor(b1, requires_grad=True)
    bbox_iou(t1, fw.tensor(b2), CIoU=True).sum().backward()
    alpha0 = np_ciou(b1, b2, alpha_only=True)
    num = np.zeros_like(b1)
    for k in np.ndindex(*b1.shape):
        d = np.zeros_like(b1)
        d[k] = 1e-6
        num[k] = (np_ciou(b1 + d, b2, alpha=alpha0).sum() - np_ciou(b1 - d, b2, alpha=alpha0).sum()) / 2e-6
    np.testing.assert_allclose(t1.grad.numpy(), num, rtol=1e-5, atol=1e-8)
    # DIoU and GIoU have no detached part: plain gradcheck
    for kw in ({"DIoU": True}, {"GIoU": True}):
        assert fw.autograd.gradcheck(lambda a, kw=kw: bbox_iou(a, fw.tensor(b2), **kw), (fw.tensor(b1, requires_grad=True),))


def test_compute_loss_gradcheck_float64(monkeypatch):
    """ComputeLoss as a function of the predictions (build_targets' gathers, the box loss,
    BCEWithLogitsLoss(pos_weight=...) for objectness and classes, label smoothing). Its
    detached parts would defeat finite differences, so the objectness target is the
    constant ``gr = 0`` form and the box IoU is DIoU (CIoU's frozen alpha: test above)."""
    import tests.real_scripts._yolov5_loss as yl
    monkeypatch.setattr(yl, "bbox_iou", lambda b1, b2, CIoU: bbox_iou(b1, b2, DIoU=CIoU))
    rng = np.random.default_rng(4)
    model = build_model(0)
    model.hyp = dict(HYP, label_smoothing=0.1, cls_pw=1.5, obj_pw=0.7)
    targets = fw.tensor([[0, 0, 0.3, 0.4, 0.2, 0.3], [0, 1, 0.7, 0.6, 0.4, 0.5], [1, 1, 0.5, 0.5, 0.3, 0.2]], dtype=fw.float64)
    shapes = [(2, 3, 4, 4, 7), (2, 3, 2, 2, 7), (2, 3, 1, 1, 7)]
    p = [fw.tensor(rng.normal(0, 1, s), requires_grad=True) for s in shapes]
    fw.set_default_dtype(fw.float64)  # ComputeLoss's loss accumulators come from torch.zeros(1)
    try:
        compute_loss = ComputeLoss(model)
        compute_loss.gr = 0.0
        loss, items = compute_loss(p, targets)
        assert loss.dtype == fw.float64 and items.shape == (3,) and (items > 0).all()
        assert fw.autograd.gradcheck(lambda *p: compute_loss(list(p), targets)[0], tuple(p), fast_mode=True, num_projections=4)
    finally:
        fw.set_default_dtype(fw.float32)


def test_focus_contract_sppf_shapes():
    x = fw.arange(2 * 4 * 4 * 4, dtype=fw.float32).reshape(2, 4, 4, 4)
    c = Contract(gain=2)(x)
    assert c.shape == (2, 16, 2, 2)
    np.testing.assert_array_equal(c.numpy()[:, :4], x.numpy()[:, :, ::2, ::2])  # s1=0, s2=0 block
    f = Focus(4, 8, 3)
    assert f(x).shape == (2, 8, 2, 2)
    assert SPPF(4, 6)(x).shape == (2, 6, 4, 4)
    assert C3(4, 8, n=2, shortcut=False)(x).shape == (2, 8, 4, 4)
