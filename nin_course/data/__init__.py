"""The data sets and the batches made from them.

- `arrays`: Fashion-MNIST, CIFAR-10 and CIFAR-100 as uint8 arrays (`load_arrays`), found under
  the data root and cached as prepared `.npz` files.
- `files`: which data file is damaged (IDX headers against file sizes, torchvision's MD5s) and
  how to replace it.
- `loaders`: batches from device-resident arrays (`ArrayLoader`): resizing, normalisation and
  augmentation as tensor operations.
"""
