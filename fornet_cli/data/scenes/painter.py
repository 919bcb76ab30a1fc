"""Drawing for the synthetic street scenes: a pinhole camera over a flat ground, a painter that draws every
shape into the label map, the instance map and the picture at once, and the photographic finish (texture,
shading, noise, blur) applied to the picture only.

Units are metres in the world (x right, y up, z forward from the camera) and pixels in the image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..labels import ID_TO_LABEL, LABELS

Point = tuple[float, float]
Color = tuple[int, int, int]

NEAR = 0.5  # metres: geometry closer than this is pushed back to it (it is off-screen anyway)


def _id(name: str) -> int:
    return next(lb.id for lb in LABELS if lb.name == name)


# fmt: off
UNLABELED, EGO_VEHICLE, BORDER, OUT_OF_ROI, STATIC, DYNAMIC, GROUND = (_id(n) for n in (
    "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic", "ground"))
ROAD, SIDEWALK, PARKING, RAIL_TRACK = (_id(n) for n in ("road", "sidewalk", "parking", "rail track"))
BUILDING, WALL, FENCE, GUARD_RAIL = (_id(n) for n in ("building", "wall", "fence", "guard rail"))
POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN = (_id(n) for n in ("pole", "traffic light", "traffic sign"))
VEGETATION, TERRAIN, SKY = (_id(n) for n in ("vegetation", "terrain", "sky"))
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = (_id(n) for n in (
    "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"))

# Texture amplitudes per label id (grey levels): pixel grain, small blotches (~3 px), large blotches (~24 px).
# Distinct per class so that texture is a cue, but overlapping so that it is never the only one.
_TEXTURE = np.full((256, 3), (3.0, 3.0, 4.0), dtype=np.float32)
for _ids, _amp in (
    ((ROAD, PARKING), (6.0, 4.0, 4.0)),
    ((SIDEWALK,), (4.0, 3.0, 6.0)),
    ((RAIL_TRACK, GROUND), (9.0, 9.0, 5.0)),
    ((BUILDING,), (3.0, 3.0, 7.0)),
    ((WALL,), (4.0, 6.0, 10.0)),
    ((FENCE, POLE, GUARD_RAIL, TRAFFIC_LIGHT, TRAFFIC_SIGN), (2.0, 1.0, 2.0)),
    ((VEGETATION,), (8.0, 20.0, 10.0)),
    ((TERRAIN,), (8.0, 9.0, 8.0)),
    ((SKY,), (1.0, 1.0, 14.0)),
    ((PERSON, RIDER), (2.0, 3.0, 3.0)),
    ((CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE), (2.0, 1.5, 5.0)),
):
    _TEXTURE[list(_ids)] = _amp
# Per-channel colour variation with large blotches: foliage and grass drift between yellow and dark green.
_TINT = np.zeros((256, 3), dtype=np.float32)
_TINT[VEGETATION] = (10.0, 14.0, 2.0)
_TINT[TERRAIN] = (12.0, 8.0, 2.0)
_TINT[SKY] = (6.0, 6.0, 3.0)
# fmt: on


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera ``height`` metres above a flat ground; the horizon is the row ``cy``."""

    f: float
    cx: float
    cy: float
    height: float = 1.5

    def p(self, x: float, y: float, z: float) -> Point:
        z = max(z, NEAR)
        return (self.cx + self.f * x / z, self.cy + self.f * (self.height - y) / z)

    def px(self, metres: float, z: float) -> float:
        """Pixels spanned by ``metres`` at depth ``z``."""
        return self.f * metres / max(z, NEAR)

    # Rectangles in the three axis planes, as polygons.
    def side(self, x: float, z0: float, z1: float, y0: float, y1: float) -> list[Point]:
        """The vertical plane x = const between depths z0..z1 (facades, the sides of vehicles)."""
        return [self.p(x, y0, z0), self.p(x, y1, z0), self.p(x, y1, z1), self.p(x, y0, z1)]

    def front(self, z: float, x0: float, x1: float, y0: float, y1: float) -> list[Point]:
        """The vertical plane z = const facing the camera."""
        return [self.p(x0, y0, z), self.p(x0, y1, z), self.p(x1, y1, z), self.p(x1, y0, z)]

    def flat(self, y: float, x0: float, x1: float, z0: float, z1: float) -> list[Point]:
        """The horizontal plane y = const (ground strips, roofs of vehicles)."""
        return [self.p(x0, y, z0), self.p(x1, y, z0), self.p(x1, y, z1), self.p(x0, y, z1)]


class Painter:
    """Draws each shape into four layers at once: label ids, instance ids, colour and shading.

    Painting is back to front, so what is drawn last is what the label map shows; labels and picture can
    never disagree. Details (windows, lane markings, lamps) go into the picture only.
    """

    def __init__(self, height: int, width: int, rng: np.random.Generator) -> None:
        self.h, self.w, self.rng = height, width, rng
        self.label = Image.new("L", (width, height), UNLABELED)
        self.inst = Image.new("I", (width, height), UNLABELED)
        self.rgb = Image.new("RGB", (width, height))
        self.shade = Image.new("L", (width, height), 255)
        self._label, self._inst, self._rgb, self._shade = (
            ImageDraw.Draw(im) for im in (self.label, self.inst, self.rgb, self.shade)
        )
        self._count: Counter[int] = Counter()

    def instance(self, label_id: int, group: bool = False) -> int:
        """A fresh instance id (label id * 1000 + k) for classes with instances, else the label id.

        ``group`` gives the plain label id, as Cityscapes does for crowds too far away to separate.
        """
        if group or not ID_TO_LABEL[label_id].has_instances:
            return label_id
        k = self._count[label_id]
        self._count[label_id] += 1
        return label_id * 1000 + k

    def shape(self, kind: str, xy: Sequence, label: int, inst: int, color: Color, shade: int = 255, **kw: int) -> None:
        """Draw a ``polygon``, ``ellipse``, ``rectangle`` or ``line`` (``width=``) into every layer."""
        getattr(self._label, kind)(xy, fill=label, **kw)
        getattr(self._inst, kind)(xy, fill=inst, **kw)
        getattr(self._rgb, kind)(xy, fill=color, **kw)
        getattr(self._shade, kind)(xy, fill=shade, **kw)

    def ring(self, xy: Sequence, label: int, inst: int, color: Color, width: int, shade: int = 255) -> None:
        """An ellipse outline ``width`` pixels wide (wheels) into every layer."""
        for draw, value in ((self._label, label), (self._inst, inst), (self._rgb, color), (self._shade, shade)):
            draw.ellipse(xy, outline=value, width=width)

    def detail(self, kind: str, xy: Sequence, color: Color, shade: int | None = None, **kw: int) -> None:
        """Draw into the picture (and the shading, when given) only: the labels stay as they are."""
        getattr(self._rgb, kind)(xy, fill=color, **kw)
        if shade is not None:
            getattr(self._shade, kind)(xy, fill=shade, **kw)

    def darken(self, xy: Sequence, shade: int) -> None:
        """A cast shadow: lower the shading of what is already drawn there."""
        self._shade.polygon(xy, fill=shade)

    def finish(self, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(picture H x W x 3 uint8, label ids H x W uint8, instance ids H x W int32)."""
        label = np.array(self.label)
        inst = np.array(self.inst, dtype=np.int32)
        return _photograph(self.rgb, self.shade, label, look, self.rng), label, inst


@dataclass(frozen=True)
class Look:
    """Photographic settings of one picture."""

    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sky_top: Color = (70, 110, 170)
    sky_horizon: Color = (170, 190, 210)
    horizon_row: float = 0.0
    noise: float = 3.0  # sensor noise, grey levels
    blur: float = 0.7  # Gaussian blur radius, pixels
    vignette: float = 0.25


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Unit-variance-ish noise with blobs about ``cell`` pixels wide (bilinear upsampling of a coarse grid)."""
    small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


def _photograph(
    rgb_im: Image.Image, shade_im: Image.Image, label: np.ndarray, look: Look, rng: np.random.Generator
) -> np.ndarray:
    h, w = label.shape
    rgb = np.asarray(rgb_im, dtype=np.float32).copy()
    sky = label == SKY
    rows = np.clip(np.arange(h, dtype=np.float32) / max(look.horizon_row, 1.0), 0.0, 1.0)[:, None, None]
    gradient = np.asarray(look.sky_top, np.float32) * (1 - rows) + np.asarray(look.sky_horizon, np.float32) * rows
    rgb = np.where(sky[:, :, None], gradient + (rgb - 128.0) * 0.15, rgb)  # drawn sky colour nudges the gradient
    amp = _TEXTURE[label]
    grain = rng.standard_normal((h, w), dtype=np.float32)
    rgb += (
        amp[..., 0] * grain + amp[..., 1] * _smooth_noise(rng, h, w, 3) + amp[..., 2] * _smooth_noise(rng, h, w, 24)
    )[..., None]
    rgb += _TINT[label] * _smooth_noise(rng, h, w, 12)[..., None]
    rgb *= (np.asarray(shade_im, dtype=np.float32) / 255.0)[..., None]
    yy, xx = np.ogrid[-1.0 : 1.0 : h * 1j, -1.0 : 1.0 : w * 1j]
    falloff = 1.0 - look.vignette * 0.5 * (xx * xx + yy * yy).astype(np.float32)
    rgb *= falloff[..., None] * (look.exposure * np.asarray(look.white_balance, np.float32))
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(look.noise)
    picture = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if look.blur > 0:
        picture = picture.filter(ImageFilter.GaussianBlur(look.blur))
    return np.asarray(picture)


def jitter(rng: np.random.Generator, color: Sequence[int], amount: float) -> Color:
    """``color`` with each channel moved by up to ``amount`` (one shared brightness shift plus a small tint)."""
    shift = rng.uniform(-amount, amount)
    tint = rng.uniform(-amount * 0.35, amount * 0.35, 3)
    out = [min(255, max(0, int(c + shift + t))) for c, t in zip(color, tint)]
    return (out[0], out[1], out[2])


def scaled(color: Sequence[int], factor: float) -> Color:
    out = [min(255, max(0, int(c * factor))) for c in color]
    return (out[0], out[1], out[2])
