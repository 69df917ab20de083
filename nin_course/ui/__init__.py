"""What the lessons show: figures, widgets and numbers written for people.

- `plots`: training curves (live in a notebook), image grids, a figure as PNG.
- `widgets`: interactive controls (the convolution cost explorer, the class-map viewer).
- `diagrams`: the architecture figures drawn from the models (the paper's Fig. 1 and 2).
- `toys`: small synthetic problems (XOR strips: what a linear filter cannot separate).
- `formatting`: byte and count formatting for tables.
"""
