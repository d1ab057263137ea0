"""Backgrounds: gradients, value noise, tiles, checker, stripes, wood, bricks, a wall above a floor.

Each style returns float32 RGB (0-255) and the phrase a caption ends with ("on a tiled floor").
Colours are muted mid-tones with a tint (HSV saturation 0.25-0.5, value 0.4-0.75), so that the
named object colours stand out and a white or black object is never just a lighter or darker copy
of a grey wall. Every background gets a faint value-noise modulation, like uneven lighting.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

Rng = np.random.Generator


def background(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    """A random background of `size` x `size` and its caption phrase.

    Drawn at half the size and upscaled (bilinear): four times fewer pixels to compute, and the
    pattern's edges come out softened, as a camera would show them."""
    style = STYLES[int(rng.integers(len(STYLES)))]
    half = max(size // 2, 16)
    image, phrase = style(rng, half)
    image *= 1.0 + 0.04 * _noise(rng, half, 3, 2)[..., None]
    image = cv2.resize(
        np.clip(image, 0.0, 255.0).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR
    )
    return image, phrase


def _tone(rng: Rng, hue: float | None = None) -> np.ndarray:
    h = rng.random() if hue is None else hue % 1.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(0.25, 0.5), rng.uniform(0.4, 0.75))
    return np.array(rgb, np.float32) * 255.0


def _shade(colour: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(colour * factor, 0.0, 255.0)


def _noise(rng: Rng, size: int, cells: int, octaves: int) -> np.ndarray:
    """Value noise in about [-1, 1]: random grids upsampled (bicubic), finer ones weaker."""
    out = np.zeros((size, size), np.float32)
    for k in range(octaves):
        n = cells * 2**k
        grid = rng.uniform(-1.0, 1.0, (n + 1, n + 1)).astype(np.float32)
        out += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC) / 2**k
    return out / (2.0 - 0.5 ** (octaves - 1))


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c1 + (c2 - c1) * np.clip(t, 0.0, 1.0)[..., None].astype(np.float32)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size].astype(np.float32)


def gradient(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    c1 = _tone(rng)
    c2 = _tone(rng, colorsys.rgb_to_hsv(*(c1 / 255))[0] + rng.uniform(-0.2, 0.2))
    y, x = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    t = (x * np.cos(angle) + y * np.sin(angle)) / size
    return _mix(c1, c2, (t - t.min()) / (t.max() - t.min())), "on a gradient background"


def mottled(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    c1 = _tone(rng)
    c2 = _shade(c1, rng.uniform(0.75, 0.9))
    return _mix(c1, c2, 0.5 + 0.6 * _noise(rng, size, int(rng.integers(3, 7)), 4)), "on a mottled background"


def checker(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    c1 = _tone(rng)
    c2 = _shade(c1, rng.uniform(0.7, 0.85))
    y, x = _grid(size)
    cell = size / rng.integers(6, 14)
    t = ((x // cell + y // cell) % 2).astype(np.float32)
    return _mix(c1, c2, t), "on a checkered floor"


def tiles(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    c1 = _tone(rng)
    grout = _shade(c1, rng.choice([0.7, 1.2]))
    y, x = _grid(size)
    cell, width = size / rng.integers(5, 11), rng.uniform(1.0, 2.0) * size / 256
    n = int(np.ceil(size / cell)) + 1
    jitter = rng.uniform(0.94, 1.06, (n, n)).astype(np.float32)
    image = c1 * jitter[(y // cell).astype(int), (x // cell).astype(int)][..., None]
    line = np.minimum(x % cell, y % cell) < width
    image[line] = grout
    return image, "on a tiled floor"


def stripes(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    c1 = _tone(rng)
    c2 = _tone(rng, colorsys.rgb_to_hsv(*(c1 / 255))[0] + rng.uniform(-0.15, 0.15))
    y, x = _grid(size)
    angle = rng.choice([0.0, np.pi / 4, -np.pi / 4])
    period = size / rng.integers(6, 16)
    phase = (x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period
    return _mix(c1, c2, 0.5 + 0.5 * np.tanh(3.0 * np.sin(phase))), "in front of a striped wall"


def wood(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    base = _tone(rng, rng.uniform(0.05, 0.11))
    y, x = _grid(size)
    plank = size / rng.integers(4, 9)
    row = (y // plank).astype(int)
    shades = rng.uniform(0.88, 1.1, row.max() + 1).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, row.max() + 1).astype(np.float32)
    warp = 8.0 * _noise(rng, size, 4, 3)
    grain = np.sin((y + warp) * 2 * np.pi / (rng.uniform(0.012, 0.028) * size) + phases[row])
    factor = shades[row] * (1.0 + 0.07 * grain) * np.where(y % plank < max(size / 256, 1.0), 0.7, 1.0)
    return base * factor[..., None], "on a wooden floor"


def bricks(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    base = _tone(rng, rng.uniform(0.0, 0.07))
    mortar = _shade(np.full(3, 200.0, np.float32), rng.uniform(0.6, 0.9))
    y, x = _grid(size)
    height = size / rng.integers(10, 18)
    row = (y // height).astype(int)
    shifted = x + (row % 2) * height
    col = (shifted // (2 * height)).astype(int)
    jitter = rng.uniform(0.85, 1.12, (row.max() + 1, col.max() + 1)).astype(np.float32)
    image = base * jitter[row, col][..., None]
    joint = 1.25 * size / 256
    image[(y % height < joint) | (shifted % (2 * height) < joint)] = mortar
    return image, "in front of a brick wall"


def room(rng: Rng, size: int) -> tuple[np.ndarray, str]:
    """A wall above a floor line, with a dark skirting board between them."""
    wall_style, wall = (mottled, "plain") if rng.random() < 0.5 else (stripes, "striped")
    floor_style, floor = [(wood, "wooden"), (tiles, "tiled"), (checker, "checkered")][int(rng.integers(3))]
    top, bottom = wall_style(rng, size)[0], floor_style(rng, size)[0]
    line = int(size * rng.uniform(0.3, 0.6))
    image = np.concatenate([top[:line], bottom[line:]])
    board = max(2, size // 80)
    image[line - board : line + board] *= 0.6
    return image, f"in front of a {wall} wall above a {floor} floor"


STYLES = (gradient, mottled, checker, tiles, stripes, wood, bricks, room)
