"""The chapter's own NiN, as d2l.ai 8.3 (PyTorch) defines it on the `d2l` package's classes.

The `d2l` package (1.0.3) does not ship NiN: the chapter defines it inline. This module types it
in, unchanged, as the reference that our `nin_course.models.NiN` is tested and compared against.
Note the book's quirk: `self.net.apply(d2l.init_cnn)` runs while the layers are still lazy, so it
initialises nothing; the book's recipe calls `model.apply_init([X], d2l.init_cnn)` afterwards.
Importing this module imports d2l (slow: it pulls in pandas, matplotlib, ...).
"""
from d2l import torch as d2l
from torch import nn


def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())


class NiN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nin_block(96, kernel_size=11, strides=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, kernel_size=5, strides=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            nin_block(384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten())
        self.net.apply(d2l.init_cnn)


class FashionMNIST(d2l.FashionMNIST):
    """d2l.FashionMNIST, unchanged, except that it reads its files from `root`.

    d2l's class takes no root: its base class `d2l.DataModule` sets `self.root = '../data'`
    (through `save_hyperparameters`) before `d2l.FashionMNIST.__init__` hands it to torchvision.
    Here `root` is a property that keeps the folder given and ignores that assignment, so the
    book's own `__init__` (Resize + ToTensor per PIL image, `download=True`) runs as printed.
    torchvision skips the download when root/FashionMNIST/raw/ holds the four files.
    """

    def __init__(self, batch_size=64, resize=(28, 28), root="../data"):
        self._root = str(root)
        super().__init__(batch_size=batch_size, resize=resize)
        self.hparams["root"] = self._root

    @property
    def root(self):
        return self._root

    @root.setter
    def root(self, value):
        pass  # d2l.DataModule.__init__ assigns '../data'; the folder given to __init__ wins
