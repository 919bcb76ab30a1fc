"""What every part of a scene shares: the camera, the painter, the random generator with a few helpers,
and the colour palettes (real-world colours that overlap between classes on purpose)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .painter import Camera, Color, Painter, jitter

FAR = 3000.0  # metres: "infinity" for ground strips

# fmt: off
BUILDING_COLORS = [(196, 180, 150), (210, 205, 195), (150, 85, 65), (215, 195, 130), (130, 130, 135),
                   (175, 165, 160), (110, 100, 90), (230, 220, 205), (170, 120, 95), (185, 190, 175)]
WALL_COLORS = [(160, 160, 155), (185, 175, 160), (120, 115, 110), (200, 195, 185), (140, 125, 110)]
FENCE_COLORS = [(60, 75, 65), (95, 95, 100), (45, 45, 48), (140, 110, 80), (150, 150, 150)]
FOLIAGE = [(60, 95, 40), (45, 80, 35), (85, 115, 50), (70, 100, 60), (40, 65, 30), (95, 110, 45)]
GRASS = [(110, 140, 70), (140, 150, 90), (120, 110, 80), (95, 125, 60)]
ASPHALT = [(85, 85, 90), (100, 98, 100), (75, 76, 80), (110, 106, 108), (92, 88, 95)]
PAVING = [(150, 140, 135), (175, 170, 160), (165, 125, 115), (140, 140, 145), (185, 180, 170)]
CAR_COLORS = [(200, 200, 205), (235, 235, 235), (30, 30, 35), (90, 95, 100), (150, 20, 25), (25, 50, 120),
              (20, 30, 60), (60, 80, 60), (170, 160, 140), (120, 0, 0), (210, 190, 60), (60, 60, 65)]
BUS_COLORS = [(230, 200, 40), (200, 40, 40), (235, 235, 230), (40, 90, 170), (60, 140, 90)]
TRAIN_COLORS = [(235, 235, 230), (200, 30, 40), (240, 200, 50), (210, 210, 215), (40, 110, 170)]
SKIN = [(225, 190, 160), (200, 160, 130), (160, 115, 85), (110, 75, 55)]
HAIR = [(30, 25, 20), (80, 55, 35), (150, 120, 70), (200, 180, 140), (120, 120, 120)]
CLOTHES = [(30, 30, 35), (40, 50, 90), (150, 30, 40), (220, 220, 215), (90, 90, 95), (60, 90, 60),
           (170, 140, 100), (200, 110, 40), (110, 60, 120), (20, 70, 130), (240, 200, 60), (120, 80, 60)]
GLASS = (45, 55, 68)
# fmt: on


class Kit:
    """One frame's camera (placed at random), painter and random generator."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.rng = rng
        self.h, self.w = size
        self.cam = Camera(
            f=self.w * rng.uniform(0.85, 1.15),
            cx=self.w * rng.uniform(0.42, 0.58),
            cy=self.h * rng.uniform(0.38, 0.48),
            height=rng.uniform(1.3, 1.7),
        )
        self.p = Painter(self.h, self.w, rng)
        self.sun = int(rng.choice([-1, 1]))  # which side the light comes from: the other side's facades are darker

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, seq: Sequence) -> object:
        return seq[int(self.rng.integers(len(seq)))]

    def color(self, palette: Sequence[Color], amount: float = 12.0) -> Color:
        return jitter(self.rng, self.pick(palette), amount)  # type: ignore[arg-type]

    def width(self, metres: float, z: float) -> int:
        return max(1, round(self.cam.px(metres, z)))
