"""Drawings as pictures people look at: PNG, SVG, a GIF replaying the strokes, contact sheets.

Strokes keep their own aspect ratio and are fitted into the picture with a margin (fit: the one fitting
of the package); black on white by default, or coloured by stroke (a 10-colour palette) or by time
(viridis, from the recorded `t` of raw drawings, else from the drawing order of the points).

The package draws every picture of a drawing once: this module (one drawing, contact sheets),
sample_grids.py (a generator's samples: grids and a point-by-point GIF) and charts.py (matplotlib:
TensorBoard grids with titles, confusion matrices). The 28x28 training bitmaps are model input, not
pictures: data/bitmap.py; the models' in-graph renderer is models/raster.py.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = ("none", "stroke", "time")
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
MARGIN = 0.06  # of the picture side, on each side
ANTIALIAS = 4  # PNGs are drawn this many times larger and scaled down
GIF_STEP_MS = 40  # a raw drawing's GIF shows the drawing every 40 ms of its recorded time
GIF_STROKE_MS = 250  # a drawing without times shows one more stroke every 250 ms
GIF_HOLD_MS = 1500  # the finished drawing stays this long before the GIF loops


def fit(point_arrays: Sequence[np.ndarray], size: float, usable: float) -> list[np.ndarray]:
    """Point arrays ([n, 2], x and y) scaled to fit a usable x usable square centred in a size x size
    picture, aspect ratio kept: the one fitting of every picture here (sample_grids.py's too)."""
    arrays = [np.asarray(array, np.float64).reshape(-1, 2) for array in point_arrays]
    points = np.concatenate(arrays)
    lower, extent = points.min(axis=0), points.max(axis=0) - points.min(axis=0)
    scale = usable / max(float(extent.max()), 1e-9)  # a single point: any scale puts it in the middle
    offset = (size - extent * scale) / 2
    return [(array - lower) * scale + offset for array in arrays]


def fitted(strokes: Sequence, size: float) -> list[np.ndarray]:
    """Each stroke's points as float [n, 2] in a size x size picture, centred, aspect ratio kept."""
    arrays = [np.stack([np.asarray(s[0], float), np.asarray(s[1], float)], axis=1) for s in strokes]
    return fit(arrays, size, size * (1 - 2 * MARGIN))


def point_times(strokes: Sequence) -> list[np.ndarray]:
    """Each point's time in [0, 1]: the recorded t when raw, else its rank in the drawing."""
    if all(len(stroke) >= 3 for stroke in strokes):
        times = [np.asarray(stroke[2], float) for stroke in strokes]
    else:
        counts = np.cumsum([0] + [len(stroke[0]) for stroke in strokes])
        times = [np.arange(a, b, dtype=float) for a, b in zip(counts[:-1], counts[1:], strict=True)]
    low = min(t.min() for t in times)
    span = max(max(t.max() for t in times) - low, 1e-9)
    return [(t - low) / span for t in times]


def _viridis(values: np.ndarray) -> list[str]:
    import matplotlib

    rgba = matplotlib.colormaps["viridis"](np.clip(values, 0, 1))
    return ["#" + "".join(f"{round(255 * c):02x}" for c in colour[:3]) for colour in rgba]


def segment_colours(strokes: Sequence, colour: str) -> list[list[str]]:
    """Per stroke, the colour of each segment (one per point; a 1-point stroke is a dot)."""
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    if colour == "none":
        return [["#000000"] * len(stroke[0]) for stroke in strokes]
    if colour == "stroke":
        return [[PALETTE[i % len(PALETTE)]] * len(stroke[0]) for i, stroke in enumerate(strokes)]
    return [_viridis(times) for times in point_times(strokes)]


def line_width(size: int) -> float:
    return max(1.0, size / 96)


def draw_strokes(
    draw: ImageDraw.ImageDraw, strokes: Sequence, size: int, colour: str, scale: int = 1
) -> None:
    """Strokes onto a PIL canvas of size*scale pixels: round-jointed lines with a dot at each end."""
    width = line_width(size) * scale
    for points, colours in zip(fitted(strokes, size * scale), segment_colours(strokes, colour), strict=True):
        for i, (x, y) in enumerate(points):
            if i:
                draw.line([tuple(points[i - 1]), (x, y)], fill=colours[i], width=max(1, round(width)))
            r = width / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colours[i])


def png_image(strokes: Sequence, size: int = 256, colour: str = "none") -> Image.Image:
    """An RGB picture, drawn ANTIALIAS times larger and scaled down (smooth edges)."""
    big = Image.new("RGB", (size * ANTIALIAS, size * ANTIALIAS), "white")
    draw_strokes(ImageDraw.Draw(big), strokes, size, colour, ANTIALIAS)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def bitmap_image(image: np.ndarray, size: int = 256) -> Image.Image:
    """A 28x28 numpy bitmap (white on black) as a size x size picture, black on white like the others."""
    picture = Image.fromarray(255 - np.asarray(image, np.uint8).reshape(28, 28), "L")
    return picture.resize((size, size), Image.Resampling.NEAREST).convert("RGB")


def svg_text(strokes: Sequence, size: int = 256, colour: str = "none") -> str:
    """An SVG with one polyline per stroke (per segment when coloured by time)."""
    width = line_width(size)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}">',
        f'<rect width="{size}" height="{size}" fill="white"/>',
        f'<g fill="none" stroke-width="{width:.2f}" stroke-linecap="round" stroke-linejoin="round">',
    ]
    for points, colours in zip(fitted(strokes, size), segment_colours(strokes, colour), strict=True):
        if len(points) == 1:
            points = np.concatenate([points, points])
            colours = colours * 2
        if colour == "time":
            for i in range(1, len(points)):
                (x0, y0), (x1, y1) = points[i - 1], points[i]
                parts.append(
                    f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{colours[i]}"/>'
                )
        else:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{coords}" stroke="{colours[0]}"/>')
    parts += ["</g>", "</svg>"]
    return "\n".join(parts) + "\n"


def gif_frames(strokes: Sequence) -> list[tuple[list, int]]:
    """(partial strokes, duration ms) per frame: every GIF_STEP_MS of recorded time for raw drawings
    (the drawing as it was drawn, pauses included), else one stroke more per frame."""
    if all(len(stroke) >= 3 for stroke in strokes):
        start = min(float(np.min(stroke[2])) for stroke in strokes)
        end = max(float(np.max(stroke[2])) for stroke in strokes)
        frames = []
        for now in np.arange(start, end + GIF_STEP_MS, GIF_STEP_MS):
            shown = []
            for stroke in strokes:
                keep = int(np.searchsorted(np.asarray(stroke[2], float), now, side="right"))
                if keep:
                    shown.append([list(stroke[0][:keep]), list(stroke[1][:keep])])
            if shown:
                frames.append((shown, GIF_STEP_MS))
    else:
        frames = [([list(s[:2]) for s in strokes[: i + 1]], GIF_STROKE_MS) for i in range(len(strokes))]
    last, _ = frames[-1]
    frames[-1] = (last, GIF_HOLD_MS)
    return frames


def gif_bytes(strokes: Sequence, size: int = 256, colour: str = "none") -> bytes:
    """An animated GIF of the drawing being drawn; every frame uses the whole drawing's framing."""
    full = fitted(strokes, size)
    images, durations = [], []
    for shown, duration in gif_frames(strokes):
        canvas = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(canvas)
        width = line_width(size)
        colours = segment_colours(strokes, colour)
        for index, stroke in enumerate(shown):
            points = full[index][: len(stroke[0])]
            for i, (x, y) in enumerate(points):
                if i:
                    draw.line(
                        [tuple(points[i - 1]), (x, y)], fill=colours[index][i], width=max(1, round(width))
                    )
        images.append(canvas)
        durations.append(duration)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buffer.getvalue()


def contact_sheet(cells: Sequence[tuple[str, Image.Image]], columns: int, size: int) -> Image.Image:
    """A grid of pictures, each titled with its word."""
    font = ImageFont.load_default()
    title = 14
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * size, rows * (size + title)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (word, picture) in enumerate(cells):
        x, y = (i % columns) * size, (i // columns) * (size + title)
        sheet.paste(picture, (x, y + title))
        draw.text((x + 4, y + 1), word[: max(4, size // 6)], fill="black", font=font)
        draw.rectangle((x, y, x + size - 1, y + size + title - 1), outline="#dddddd")
    return sheet
