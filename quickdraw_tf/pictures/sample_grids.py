"""Pictures of generated drawings: PNG and SVG grids, and an animated GIF of a drawing being drawn.

Drawings are lists of strokes, each a [k, 2] array of absolute (x, y) points with y pointing down (as
on the canvas). Each drawing is fitted into its own square cell, aspect ratio kept. A prefix given
to a completion can be shown in another colour (`given` points per drawing).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from quickdraw_tf.pictures import fit

Strokes = Sequence[np.ndarray]
INK, GIVEN, BACKGROUND = (0, 0, 0), (200, 40, 40), (255, 255, 255)
MAX_GIF_FRAMES = 60


def _fit(strokes: Strokes, size: int, margin: int) -> list[np.ndarray]:
    """The strokes ([k, 2] points each) in a size x size cell with `margin` pixels on each side."""
    return fit(strokes, size, size - 2 * margin)


def _draw(canvas: ImageDraw.ImageDraw, strokes: list[np.ndarray], origin, width: int, given: int) -> None:
    """Draws fitted strokes at `origin`; the first `given` points in the GIVEN colour."""
    seen = 0
    for stroke in strokes:
        xy = [(float(x) + origin[0], float(y) + origin[1]) for x, y in stroke]
        colour = GIVEN if seen + len(xy) <= given else INK
        if len(xy) == 1:
            x, y = xy[0]
            canvas.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=colour)
        else:
            canvas.line(xy, fill=colour, width=width, joint="curve")
        seen += len(xy)


def grid_png(
    drawings: Sequence[Strokes], columns: int = 4, cell: int = 128, given: Sequence[int] = ()
) -> bytes:
    """Drawings in a grid (row-major), one cell each, as PNG bytes."""
    rows = max(1, -(-len(drawings) // columns))
    image = Image.new("RGB", (columns * cell, rows * cell), BACKGROUND)
    canvas = ImageDraw.Draw(image)
    for i, strokes in enumerate(drawings):
        origin = ((i % columns) * cell, (i // columns) * cell)
        _draw(canvas, _fit(strokes, cell, cell // 12), origin, 2, given[i] if given else 0)
        canvas.rectangle([origin, (origin[0] + cell - 1, origin[1] + cell - 1)], outline=(220, 220, 220))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grid_svg(drawings: Sequence[Strokes], columns: int = 4, cell: int = 128) -> str:
    """Drawings in a grid as an SVG document (one polyline per stroke)."""
    rows = max(1, -(-len(drawings) // columns))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns * cell}" height="{rows * cell}" '
        f'viewBox="0 0 {columns * cell} {rows * cell}">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for i, strokes in enumerate(drawings):
        ox, oy = (i % columns) * cell, (i // columns) * cell
        parts.append(f'<g transform="translate({ox},{oy})" fill="none" stroke="black" stroke-width="2" '
                     'stroke-linecap="round" stroke-linejoin="round">')
        for stroke in _fit(strokes, cell, cell // 12):
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in stroke)
            parts.append(f'<polyline points="{points}"/>')
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def drawing_gif(strokes: Strokes, size: int = 192, given: int = 0, frame_ms: int = 60) -> bytes:
    """An animated GIF of the drawing appearing point by point (at most MAX_GIF_FRAMES frames, the last
    one held for a second)."""
    fitted = _fit(strokes, size, size // 16)
    total = sum(len(stroke) for stroke in fitted)
    counts = np.unique(np.linspace(1, total, min(total, MAX_GIF_FRAMES)).round().astype(int))
    frames = []
    for count in counts:
        partial, left = [], int(count)
        for stroke in fitted:
            if left <= 0:
                break
            partial.append(stroke[:left])
            left -= len(stroke)
        image = Image.new("RGB", (size, size), BACKGROUND)
        _draw(ImageDraw.Draw(image), partial, (0, 0), 3, given)
        frames.append(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8))
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [1000]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return buffer.getvalue()


def labelled_rows_png(rows: Sequence[tuple[str, Sequence[Strokes]]], cell: int = 80) -> bytes:
    """One row of drawings per label (e.g. samples per class), the label written above the row's cells."""
    columns = max(len(drawings) for _, drawings in rows)
    label_height = 14
    height = cell + label_height
    image = Image.new("RGB", (columns * cell, len(rows) * height), BACKGROUND)
    canvas = ImageDraw.Draw(image)
    for r, (label, drawings) in enumerate(rows):
        top = r * height
        canvas.text((4, top + 1), label, fill=(60, 60, 60))
        for c, strokes in enumerate(drawings):
            _draw(canvas, _fit(strokes, cell, cell // 10), (c * cell, top + label_height), 2, 0)
        canvas.line([(0, top + height - 1), (columns * cell, top + height - 1)], fill=(220, 220, 220))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
