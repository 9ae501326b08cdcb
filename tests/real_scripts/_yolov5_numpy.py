"""NumPy references for the yolov5 port's tests: Detect's inference decode, greedy NMS,
non_max_suppression and bbox_iou's CIoU."""

import math

import numpy as np


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_decode(raw, anchors_px, strides):
    """Detect's inference decode in NumPy from the raw (bs, na, ny, nx, no) maps: anchors in
    pixels (the yaml's), strides 8 / 16 / 32."""
    z = []
    for xi, a, s in zip(raw, anchors_px, strides, strict=True):
        bs, na, ny, nx, no = xi.shape
        yv, xv = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        grid = np.stack((xv, yv), -1)[None, None] - 0.5
        sig = _np_sigmoid(xi.astype(np.float64))
        xy = (sig[..., :2] * 2 + grid) * s
        wh = (sig[..., 2:4] * 2) ** 2 * np.asarray(a, np.float64).reshape(1, na, 1, 1, 2)
        z.append(np.concatenate((xy, wh, sig[..., 4:]), -1).reshape(bs, -1, no))
    return np.concatenate(z, 1)


def np_nms(boxes, scores, thr):
    """Greedy NMS in NumPy (torchvision's semantics: drop IoU > thr, highest score first)."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes[rest, 0], boxes[i, 0])
        yy1 = np.maximum(boxes[rest, 1], boxes[i, 1])
        xx2 = np.minimum(boxes[rest, 2], boxes[i, 2])
        yy2 = np.minimum(boxes[rest, 3], boxes[i, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        iou = inter / (area(boxes[i]) + area(boxes[rest]) - inter)
        order = rest[iou <= thr]
    return np.array(keep, np.int64)


def np_non_max_suppression(pred, conf_thres, iou_thres, multi_label=False, max_wh=7680):
    """non_max_suppression in NumPy: [x1, y1, x2, y2, conf, cls] rows per image."""
    out = []
    for x in pred.astype(np.float64):
        x = x[x[:, 4] > conf_thres].copy()
        x[:, 5:] *= x[:, 4:5]
        box = np.concatenate((x[:, :2] - x[:, 2:4] / 2, x[:, :2] + x[:, 2:4] / 2), 1)
        if multi_label:
            i, j = np.nonzero(x[:, 5:] > conf_thres)
            det = np.concatenate((box[i], x[i, 5 + j, None], j[:, None]), 1)
        else:
            j = x[:, 5:].argmax(1)
            conf = x[np.arange(len(x)), 5 + j]
            det = np.concatenate((box, conf[:, None], j[:, None]), 1)[conf > conf_thres]
        det = det[np.argsort(-det[:, 4], kind="stable")]
        keep = np_nms(det[:, :4] + det[:, 5:6] * max_wh, det[:, 4], iou_thres)
        out.append(det[keep])
    return out


def np_ciou(b1, b2, eps=1e-7, alpha=None, alpha_only=False):
    """bbox_iou(xywh, CIoU=True) in NumPy (``alpha``: use this trade-off instead)."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = b1.T, b2.T
    l1, r1, t1, d1 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    l2, r2, t2, d2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = np.clip(np.minimum(r1, r2) - np.maximum(l1, l2), 0, None) * np.clip(np.minimum(d1, d2) - np.maximum(t1, t2), 0, None)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw, ch = np.maximum(r1, r2) - np.minimum(l1, l2), np.maximum(d1, d2) - np.minimum(t1, t2)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((l2 + r2 - l1 - r1) ** 2 + (t2 + d2 - t1 - d1) ** 2) / 4
    v = 4 / math.pi ** 2 * (np.arctan(w2 / h2) - np.arctan(w1 / h1)) ** 2
    alpha = v / (v - iou + (1 + eps)) if alpha is None else alpha
    return alpha if alpha_only else iou - (rho2 / c2 + v * alpha)
