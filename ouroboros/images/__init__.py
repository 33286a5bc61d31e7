"""Labelled grey images through the same factory as tables: data, stable split, generators, gate, chains.

Images travel as `ImageSet` (float32 pixels in [0, 1], shape (n, h, w), int labels) inside the core and as
a polars frame (`label`, `image` = the uint8 pixel bytes) in the lake, so the lake, its IO manager, the
verdict store and the content fingerprints of the table pipeline serve images unchanged.
"""
