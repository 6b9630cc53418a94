"""The numpy_bitmap recipe Google's team posted in googlecreativelab/quickdraw-dataset#19
(vector_to_raster), run with cairo through cairocffi: the reference quickdraw_tf.data.bitmap is tested
against."""

from __future__ import annotations

import cairocffi as cairo
import numpy as np


def vector_to_raster(
    vector_images, side=28, line_diameter=16, padding=16, bg_color=(0, 0, 0), fg_color=(1, 1, 1)
) -> list[np.ndarray]:
    """padding and line_diameter are relative to the original 256x256 image (as published)."""
    original_side = 256.0
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, side, side)
    ctx = cairo.Context(surface)
    ctx.set_antialias(cairo.ANTIALIAS_BEST)
    ctx.set_line_cap(cairo.LINE_CAP_ROUND)
    ctx.set_line_join(cairo.LINE_JOIN_ROUND)
    ctx.set_line_width(line_diameter)
    # scale to match the new size; add padding at the edges for the line_diameter and antialiasing
    total_padding = padding * 2.0 + line_diameter
    new_scale = float(side) / float(original_side + total_padding)
    ctx.scale(new_scale, new_scale)
    ctx.translate(total_padding / 2.0, total_padding / 2.0)
    raster_images = []
    for vector_image in vector_images:
        ctx.set_source_rgb(*bg_color)
        ctx.paint()
        bbox = np.hstack(vector_image).max(axis=1)
        offset = ((original_side, original_side) - bbox) / 2.0
        offset = offset.reshape(-1, 1)
        centered = [np.asarray(stroke, np.float64) + offset for stroke in vector_image]
        ctx.set_source_rgb(*fg_color)
        for xv, yv in centered:
            ctx.move_to(xv[0], yv[0])
            for x, y in zip(xv, yv, strict=True):
                ctx.line_to(x, y)
            ctx.stroke()
        surface.flush()
        data = np.frombuffer(surface.get_data(), np.uint8).reshape(side, surface.get_stride())
        raster_images.append(data[:, : side * 4 : 4].copy().reshape(side * side))
    return raster_images
