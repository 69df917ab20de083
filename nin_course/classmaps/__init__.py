"""The last mlpconv layer's class maps (the paper's Fig. 4) and whether they find the object.

- `maps`: extracting the maps, upsampling them, overlays and plots.
- `localisation`: objects pasted at known boxes on a larger canvas, and the maps scored
  against the boxes (pointing game, energy in the box, CAM's box IoU).
"""
