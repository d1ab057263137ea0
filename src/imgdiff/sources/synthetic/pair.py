"""One pair: a scene, one edit (replacement, removal) or a global photometric change, and its truth.

The plan comes first, each choice one `rng.random()` against its share, so the shares are exact in
expectation whatever the resampling below does:
- distractor (`distractor_share`): b is a copy of a under a brightness, contrast, gamma and/or
  colour cast change that clips at most `MAX_CLIPPED` of the pixels; no object changes, no truth;
- otherwise removal (`removal_share`) or replacement; `occluded_share` of edits put another object
  over the target (15-60% of it hidden); `same_colour_share` of replacements keep the colour and
  change only the class (otherwise the colour changes, and the class may).
Then scenes are drawn until the edit meets the fixed difficulty:
1. the changed object's visible pixels cover at least `min_area` of the image (the old object in
   a; for a replacement the new one in b too);
2. each truth mask is mostly one piece (`ONE_PIECE`): partly hidden, not cut in two by an object
   in front;
3. the edit shows: in the noise-free renders at least `SEEN_SHARE` of the truth masks' union
   changes by delta-E > `SEEN_DELTA_E`, and those pixels span at least `SEEN_SPAN` of the truth box
   (a same-coloured square replaced by a rounded one, or a removal that reveals an object of the
   same colour, is drawn again);
4. after a replacement every object still shows at least `scene.MIN_SHOWN` of itself.
Both images then get Gaussian noise of the pair's sigma, drawn independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from imgdiff.pixels import delta_e, to_lab
from imgdiff.sources.synthetic import draw, scene, textures
from imgdiff.sources.synthetic.draw import Sprite

SEEN_DELTA_E = 12.0  # clearly different colours (2.3 is just noticeable)
SEEN_SHARE = 0.25  # of the truth masks' union
SEEN_SPAN = 0.8  # area of the changed pixels' box / the truth box
ONE_PIECE = 0.9  # share of a truth mask in its largest connected piece
MAX_CLIPPED = 0.005  # share of a distractor's pixels pushed out of range
OCCLUDED = 0.05  # a target with at least this share hidden counts as partly occluded
TRIES = 200

Rng = np.random.Generator


class Unsatisfiable(Exception):
    """No scene met the constraints within TRIES draws (only with extreme settings)."""


@dataclass(frozen=True)
class Plan:
    kind: str  # replacement | removal | distractor
    occluded: bool  # put the target partly behind another object
    same_colour: bool
    sigma: float  # noise


def plan(rng: Rng, s: Any) -> Plan:
    """The pair's kind and deliberate choices, the first draws from its rng."""
    sigma = float(rng.uniform(s.noise_min, s.noise_max))
    if rng.random() < s.distractor_share:
        kind = "distractor"
    else:
        kind = "removal" if rng.random() < s.removal_share else "replacement"
    occluded = kind != "distractor" and bool(rng.random() < s.occluded_share)
    same_colour = kind == "replacement" and bool(rng.random() < s.same_colour_share)
    return Plan(kind, occluded, same_colour, sigma)


@dataclass
class Pair:
    plan: Plan
    background: np.ndarray  # float32, noise-free
    setting: str  # the caption's background phrase
    sprites_a: list[Sprite]
    sprites_b: list[Sprite]
    clean_a: np.ndarray  # float32 renders before noise
    clean_b: np.ndarray
    target: int | None = None  # index of the changed object in sprites_a (and sprites_b)
    truth_a: np.ndarray | None = None
    truth_b: np.ndarray | None = None
    box: list[int] | None = None
    occluded: bool = False  # at least OCCLUDED of the target was hidden in a
    photometric: dict[str, float] = field(default_factory=dict)
    a: np.ndarray | None = None  # uint8, noised
    b: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return self.plan.kind

    @property
    def caption_a(self) -> str:
        return scene.caption([s.obj for s in self.sprites_a], self.setting)

    @property
    def caption_b(self) -> str:
        return scene.caption([s.obj for s in self.sprites_b], self.setting)

    @property
    def edit(self) -> tuple[str, str] | None:
        if self.target is None:
            return None
        new = self.sprites_b[self.target].obj.name if self.kind == "replacement" else ""
        return self.sprites_a[self.target].obj.name, new


def make_pair(rng: Rng, s: Any) -> Pair:
    """A pair drawn from `rng` alone under settings `s` (a SyntheticSettings)."""
    p = plan(rng, s)
    for attempt in range(TRIES):
        if attempt % 10 == 0:  # a background that keeps failing is drawn again too
            background, setting = textures.background(rng, s.size)
        pair = _attempt(rng, s, p, background, setting)
        if pair is not None:
            return _noised(rng, pair)
    raise Unsatisfiable(f"no scene met the constraints in {TRIES} draws")


def _attempt(rng: Rng, s: Any, p: Plan, background: np.ndarray, setting: str) -> Pair | None:
    """One scene and its edit, or None when a constraint fails."""
    n = int(rng.integers(s.objects_min, s.objects_max + 1))
    light = float(rng.uniform(0, 2 * np.pi))  # where all shadows fall
    pick = None
    if p.occluded:
        n = max(n, 2)
        t = int(rng.integers(n - 1))
        pick = (t, int(rng.integers(t + 1, n)))  # (target, the object put over it)
    sprites = scene.place(rng, s.size, n, light, pick)
    if sprites is None:
        return None
    clean_a = draw.render(background, sprites)
    if p.kind == "distractor":
        clean_b, change = _photometric(rng, clean_a)
        return Pair(p, background, setting, sprites, sprites, clean_a, clean_b, photometric=change)
    # 1. the target: shows at least min_area
    min_px = s.min_area * s.size * s.size
    shown = [draw.visible(sprites, i, s.size) for i in range(len(sprites))]
    eligible = [i for i in range(len(sprites)) if shown[i].sum() >= min_px]
    if not eligible or (pick and pick[0] not in eligible):
        return None
    target = pick[0] if pick else eligible[int(rng.integers(len(eligible)))]
    edited = _edited(rng, sprites, target, p, s.size, light)
    if edited is None:
        return None
    truth_a = shown[target]
    if p.kind == "removal":
        truth_b = np.zeros_like(truth_a)
    else:
        truth_b = draw.visible(edited, target, s.size)
        if truth_b.sum() < min_px or not scene.all_shown(edited):
            return None
    # 2. one piece each; 3. the edit shows
    if not (_one_piece(truth_a) and _one_piece(truth_b)):
        return None
    clean_b = draw.render(background, edited)
    box = _box(truth_a | truth_b)
    if not _seen(clean_a, clean_b, truth_a | truth_b, box):
        return None
    hidden = draw.hidden_share(sprites[target], sprites[target + 1 :])
    return Pair(
        p, background, setting, sprites, edited, clean_a, clean_b,
        target=target, truth_a=truth_a, truth_b=truth_b, box=box, occluded=hidden >= OCCLUDED,
    )  # fmt: skip


def _edited(rng: Rng, sprites: list[Sprite], target: int, p: Plan, size: int, light: float):
    """The edited sprite list: the target removed, or replaced in place (same depth)."""
    if p.kind == "removal":
        return sprites[:target] + sprites[target + 1 :]
    old = sprites[target].obj
    taken = {s.obj.name for s in sprites}
    colours = [old.colour] if p.same_colour else [c for c in scene.COLOURS if c != old.colour]
    for _ in range(20):
        shape = scene.CLASSES[int(rng.integers(len(scene.CLASSES)))]
        colour = colours[int(rng.integers(len(colours)))]
        new = scene.new_object(rng, size, light, shape, colour, like=old)
        if new.name not in taken:  # another class and/or colour, named once in the scene
            return [*sprites[:target], Sprite(new), *sprites[target + 1 :]]
    return None


def _box(mask: np.ndarray) -> list[int]:
    """[x1, y1, x2, y2] of a mask's pixels, x2 and y2 exclusive."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return [x, y, x + w, y + h]


def _one_piece(mask: np.ndarray) -> bool:
    """Whether a mask (if not empty) is mostly one connected piece."""
    if not mask.any():
        return True
    x1, y1, x2, y2 = _box(mask)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask[y1:y2, x1:x2].view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return areas.max() >= ONE_PIECE * areas.sum()


def _seen(clean_a: np.ndarray, clean_b: np.ndarray, union: np.ndarray, box: list[int]) -> bool:
    """Whether the edit shows: enough of the union changes colour, spread over the truth box."""
    x1, y1, x2, y2 = box
    crop = (slice(y1, y2), slice(x1, x2))
    diff = delta_e(to_lab(clean_a[crop] / 255.0), to_lab(clean_b[crop] / 255.0))
    changed = (diff > SEEN_DELTA_E) & union[crop]
    if changed.sum() < SEEN_SHARE * union.sum():
        return False
    cx1, cy1, cx2, cy2 = _box(changed)
    return (cx2 - cx1) * (cy2 - cy1) >= SEEN_SPAN * (x2 - x1) * (y2 - y1)


def _photometric(rng: Rng, image: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """A global change that keeps the pixels in range (a clipped highlight is lost detail, not
    lighting): drawn again until at most MAX_CLIPPED of them clip, else taken halfway."""
    for _ in range(10):
        out, change = _change(rng, image / 255.0)
        if ((out < 0.0) | (out > 1.0)).any(axis=2).mean() <= MAX_CLIPPED:
            break
    else:
        out, change = (image / 255.0 + out) / 2, {**change, "halved": 1.0}
    return (np.clip(out, 0.0, 1.0) * 255.0).astype(np.float32), change


def _change(rng: Rng, out: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """One or two of brightness, contrast, gamma and colour cast on [0, 1] pixels, unclipped."""
    ops = ["brightness", "contrast", "gamma", "cast"]
    change: dict[str, float] = {}
    for op in sorted(ops[i] for i in rng.permutation(4)[: int(rng.integers(1, 3))]):
        if op == "brightness":
            change[op] = float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.12))
            out = out + change[op]
        elif op == "cast":
            cast = rng.uniform(-0.06, 0.06, 3).astype(np.float32)
            change.update({f"cast_{c}": float(v) for c, v in zip("rgb", cast, strict=True)})
            out = out + cast
        elif op == "contrast":
            change[op] = float(rng.choice([0.8, 1.2]) * rng.uniform(0.95, 1.05))
            out = (out - out.mean()) * change[op] + out.mean()
        else:
            change[op] = float(np.exp(rng.choice([-1, 1]) * rng.uniform(0.1, 0.25)))
            out = np.sign(out) * np.abs(out) ** change[op]  # out-of-range values stay out
    return out, change


def _noised(rng: Rng, pair: Pair) -> Pair:
    """Both images with Gaussian noise of the pair's sigma, drawn independently, as uint8."""

    def noised(clean: np.ndarray) -> np.ndarray:
        out = rng.standard_normal(clean.shape, dtype=np.float32)
        out *= pair.plan.sigma
        out += clean
        np.clip(out, 0.0, 255.0, out=out)
        out += 0.5  # rounds on the cast below
        return out.astype(np.uint8)

    pair.a, pair.b = noised(pair.clean_a), noised(pair.clean_b)
    return pair
