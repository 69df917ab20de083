"""What a network costs: parameters, FLOPs and memory, per layer and side by side.

- `trace`: one forward pass traced: each layer's output shape and size, and its FLOPs.
- `memory`: memory to train and to run, from what autograd keeps (saved-tensor hooks), and
  measured peaks (the CUDA allocator's; the CPU profiler's).
- `resources`: the per-layer table and the totals (`resource_table`, `resource_summary`), and
  one convolution's cost (`conv_cost`).
- `compare`: several models side by side, and copying weights between them by order.
"""
