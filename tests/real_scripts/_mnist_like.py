"""Synthetic stand-ins for torchvision's MNIST in the ported pytorch/examples scripts.

Images are 28x28 grey-scale patterns of easy classes (horizontal bar, vertical bar,
diagonal, square outline, and up to 10 with more shapes) at a random offset with a little
noise, so that a few training steps visibly lower the loss. Nothing is downloaded.
"""

import numpy as np

import framework as fw

MEAN, STD = 0.1307, 0.3081   # the Normalize((0.1307,), (0.3081,)) of the MNIST scripts


def pattern(label, rng):
    """One 28x28 float32 image in [0, 1] of class ``label`` (0..9)."""
    img = np.zeros((28, 28), np.float32)
    o = int(rng.integers(6, 22))
    idx = np.arange(4, 24)
    if label == 0:
        img[o - 1:o + 2, 4:24] = 1.0
    elif label == 1:
        img[4:24, o - 1:o + 2] = 1.0
    elif label == 2:
        img[idx, idx] = 1.0
        img[idx[:-1] + 1, idx[:-1]] = 1.0
    elif label == 3:
        img[4:24, 4] = img[4:24, 23] = img[4, 4:24] = img[23, 4:24] = 1.0
    elif label == 4:
        img[idx, 27 - idx] = 1.0
        img[idx[:-1] + 1, 27 - idx[:-1]] = 1.0
    elif label == 5:
        img[o - 1:o + 2, 4:24] = img[4:24, o - 1:o + 2] = 1.0
    elif label == 6:
        img[idx, idx] = img[idx, 27 - idx] = 1.0
    elif label == 7:
        img[o - 4:o + 4, 10:18] = 1.0
    elif label == 8:
        img[5:7, 4:24] = img[20:22, 4:24] = 1.0
    else:
        img[4:24, 5:7] = img[4:24, 20:22] = 1.0
    img += rng.uniform(0.0, 0.15, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def make_arrays(n, seed, num_classes=4):
    """``n`` images (n, 28, 28) uint8 and labels (n,) int64, balanced over the classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = np.stack([pattern(int(lab), rng) for lab in labels])
    return (images * 255).round().astype(np.uint8), labels.astype(np.int64)


class SyntheticMNIST(fw.utils.data.Dataset):
    """``datasets.MNIST(..., transform=Compose([ToTensor(), Normalize(...)]))`` look-alike:
    items are ``(image (1, 28, 28) float32, int label)``; ``flatten=True`` applies the
    forward-forward script's extra ``Lambda(lambda x: torch.flatten(x))``."""

    def __init__(self, n, seed, flatten=False, num_classes=4):
        super().__init__()
        self.data, self.targets = make_arrays(n, seed, num_classes)
        self.flatten = flatten

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        img = fw.tensor(self.data[index], dtype=fw.float32).unsqueeze(0) / 255.0  # ToTensor
        img = (img - MEAN) / STD                                                 # Normalize
        if self.flatten:
            img = fw.flatten(img)
        return img, int(self.targets[index])
