"""People and vehicles: pedestrians, riders on bicycles and motorcycles, parked bicycles, cars, trucks,
buses and trams. Each gets its own instance id and its own colours."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .kit import (
    BUS_COLORS,
    CAR_COLORS,
    CLOTHES,
    GLASS,
    HAIR,
    SKIN,
    TRAIN_COLORS,
    Kit,
)
from .painter import (
    BICYCLE,
    BUS,
    CAR,
    MOTORCYCLE,
    RIDER,
    TRAIN,
    TRUCK,
    Color,
    jitter,
    scaled,
)

_Poly = Callable[..., None]  # draws a polygon given in (metres sideways from the person, height) pairs


@dataclass(frozen=True)
class _Body:
    """A person's proportions in metres: height, half shoulder width, hip and neck heights, sideways lean."""

    h: float
    half: float
    hip: float
    neck: float
    lean: float
    base: float  # the seat height of a rider (0 for a pedestrian)


def _hanging_legs(poly: _Poly, b: _Body, legs: Color) -> None:
    """A rider's legs hanging down to the pedals."""
    for sgn in (-1, 1):
        poly(
            [(sgn * b.half * 0.3, b.base + 0.05), (sgn * b.half * 0.9, b.base + 0.05),
             (sgn * b.half * 0.9 + b.lean * 0.3, b.base - b.h * 0.3), (sgn * b.half * 0.5, b.base - b.h * 0.3)],
            legs,
        )



class Actors(Kit):
    """Draws one person or vehicle each; ``x``, ``z`` in metres."""

    def person(
        self,
        x: float,
        z: float,
        label: int,
        *,
        riding: bool = False,
        side_on: bool | None = None,
        base: float = 0.0,
        inst: int | None = None,
    ) -> None:
        """A pedestrian (or, with ``riding``, a rider sitting at height ``base``), facing or side-on."""
        inst = self.p.instance(label) if inst is None else inst
        h = self.u(1.55, 1.95)
        side_on = self.chance(0.35) if side_on is None else side_on
        skin, hair = self.color(SKIN, 8), self.color(HAIR, 10)
        top, legs = self.color(CLOTHES, 20), self.color(CLOTHES[:6], 15)
        body = _Body(
            h=h,
            half=h * (0.08 if side_on else 0.13),  # half shoulder width
            hip=h * (0.47 if not riding else 0.0) + base,
            neck=base + (h * 0.82 if not riding else h * 0.42),
            lean=(h * 0.08 if riding and side_on else 0.0) * self.pick([-1, 1]),  # type: ignore[operator]
            base=base,
        )

        def poly(pts: list[tuple[float, float]], color: Color, shade: int = 230) -> None:
            self.p.shape("polygon", [self.cam.p(x + dx, y, z) for dx, y in pts], label, inst, color, shade)

        if riding:
            _hanging_legs(poly, body, legs)
        else:
            self._walking_legs(poly, body, legs, side_on)
        b = body
        poly([(-b.half * 0.75, b.hip), (b.half * 0.75, b.hip), (b.half + b.lean, b.neck), (-b.half + b.lean, b.neck)], top)
        self._arms(poly, body, top, riding, side_on)
        hr = h * 0.065
        hx, hy = b.lean, b.neck + hr * 1.2
        x0, y0 = self.cam.p(x + hx - hr * 0.85, hy + hr, z)
        x1, y1 = self.cam.p(x + hx + hr * 0.85, hy - hr, z)
        self.p.shape("ellipse", [x0, y0, x1, y1], label, inst, skin, 235)
        self.p.detail("ellipse", [x0, y0, x1, y0 + (y1 - y0) * 0.45], hair)
        if not riding and self.chance(0.25):  # a bag
            bx = b.half * self.pick([-1, 1]) * 1.2  # type: ignore[operator]
            poly(
                [(bx - 0.12, b.hip - 0.1), (bx + 0.12, b.hip - 0.1), (bx + 0.12, b.hip + 0.25), (bx - 0.12, b.hip + 0.25)],
                self.color(CLOTHES, 20),
            )

    def _walking_legs(self, poly: _Poly, b: _Body, legs: Color, side_on: bool) -> None:
        """Two legs apart by a stride (wider side-on), each with a shoe."""
        h = b.h
        stride = h * (self.u(0.05, 0.18) if side_on else self.u(0.0, 0.05))
        for sgn in (-1, 1):
            foot = sgn * (stride + h * 0.03)
            poly(
                [(sgn * h * 0.01, b.hip), (sgn * h * 0.09, b.hip), (foot + sgn * h * 0.035, 0.0), (foot - sgn * h * 0.025, 0.0)],
                legs,
            )
            poly([(foot - h * 0.04, 0.0), (foot + h * 0.04, 0.0), (foot + h * 0.04, h * 0.03), (foot - h * 0.04, h * 0.03)],
                 (30, 28, 26))

    def _arms(self, poly: _Poly, b: _Body, top: Color, riding: bool, side_on: bool) -> None:
        """Arms from the shoulders: swinging at the sides, or forward to the handlebar when riding."""
        h = b.h
        swing = h * (self.u(-0.08, 0.08) if side_on else 0.02)
        for sgn in (-1, 1):
            if riding:
                hand = (sgn * b.half * 0.9 + b.lean * 2.2, b.base + h * 0.3)
            else:
                hand = (sgn * (b.half + h * 0.03) + sgn * swing, b.hip - h * 0.02)
            sx = sgn * b.half + b.lean
            poly(
                [(sx - h * 0.025, b.neck - h * 0.02), (sx + h * 0.025, b.neck - h * 0.02),
                 (hand[0] + h * 0.02, hand[1]), (hand[0] - h * 0.02, hand[1])],
                top,
                215,
            )

    def bicycle_side(self, x: float, z: float, inst: int | None = None, color: Color | None = None) -> None:
        """A bicycle seen from the side (wheel plane facing the camera): thin tubes and two rings."""
        p, cam = self.p, self.cam
        inst = p.instance(BICYCLE) if inst is None else inst
        color = color or self.color(CLOTHES + [(20, 20, 20)], 15)
        d = self.pick([-1, 1])
        r, base = 0.34, 0.52
        tube = self.width(0.035, z)

        def P(u: float, y: float) -> tuple[float, float]:
            return cam.p(x + d * u, y, z)  # type: ignore[operator]

        for u in (-base, base):
            x0, y0 = P(u - r, 2 * r)
            x1, y1 = P(u + r, 0)
            p.ring([min(x0, x1), y0, max(x0, x1), y1], BICYCLE, inst, (25, 25, 25), self.width(0.05, z))
        seat, bb, head = (-0.2, 0.9), (-0.02, 0.3), (0.38, 0.92)
        for a, b in (
            ((-base, r), seat),
            (seat, bb),
            (bb, (-base, r)),
            (seat, head),
            (head, bb),
            (head, (base, r)),
            (head, (0.33, 1.08)),
        ):
            p.shape("line", [P(*a), P(*b)], BICYCLE, inst, color, 230, width=tube)
        p.shape("line", [P(-0.3, 0.93), P(-0.1, 0.93)], BICYCLE, inst, (30, 30, 30), 230, width=self.width(0.05, z))

    def vehicle(self, kind: str, x: float, z: float, d: int) -> None:
        if kind == "car":
            self.car(x, z, d)
        elif kind == "truck":
            self.truck(x, z, d)
        elif kind == "bus":
            self.bus(x, z, d)
        elif kind == "motorcycle":
            self.two_wheeler(x, z, MOTORCYCLE)
        else:
            self.two_wheeler(x, z, BICYCLE)

    def box(
        self, label: int, inst: int, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, color: Color
    ) -> tuple[float | None, bool]:
        """A lit box: the visible side (the one facing the camera's x), the top when below eye level, the
        front. Returns the x of the visible side (None if the camera is between x0 and x1)."""
        p, cam = self.p, self.cam
        xs = x0 if x0 > 0 else (x1 if x1 < 0 else None)
        if xs is not None:
            p.shape("polygon", cam.side(xs, z0, z1, y0, y1), label, inst, color, 175 if xs * self.sun < 0 else 205)
        top = y1 < cam.height
        if top:
            p.shape("polygon", cam.flat(y1, x0, x1, z0, z1), label, inst, color, 250)
        p.shape("polygon", cam.front(z0, x0, x1, y0, y1), label, inst, color, 225)
        return xs, top

    def wheels(self, label: int, inst: int, xs: float | None, zs: Sequence[float], r: float) -> None:
        if xs is None:
            return
        for zc in zs:
            self.p.shape("polygon", self.cam.side(xs, zc - r, zc + r, 0, 2 * r), label, inst, (22, 22, 24), 230)
            self.p.detail(
                "polygon", self.cam.side(xs, zc - r * 0.45, zc + r * 0.45, r * 0.55, r * 1.45), (120, 120, 125)
            )

    def shadow(self, x0: float, x1: float, z0: float, z1: float) -> None:
        self.p.darken(self.cam.flat(0, x0 - 0.15, x1 + 0.15, z0 - 0.3, z1 + 0.4), 110)

    def car(self, x: float, z: float, d: int, length: float | None = None) -> None:
        p = self.p
        w, length = self.u(1.7, 1.95), length or self.u(4.0, 4.9)
        group = z > 65  # far-away cars are labelled as a group, as in Cityscapes
        inst = p.instance(CAR, group=group)
        color = self.color(CAR_COLORS, 10)
        x0, x1, z1 = x - w / 2, x + w / 2, z + length
        body_top, roof = self.u(0.9, 1.05), self.u(1.38, 1.6)
        self.shadow(x0, x1, z, z1)
        xs, _ = self.box(CAR, inst, x0, x1, 0.25, body_top, z, z1, color)
        self.wheels(CAR, inst, xs, (z + 0.8, z1 - 0.8), 0.32)
        ca, cb = z + length * self.u(0.22, 0.3), z1 - length * self.u(0.18, 0.28)
        cxs, _ = self.box(CAR, inst, x0 + 0.12, x1 - 0.12, body_top, roof, ca, cb, color)
        cam = self.cam
        glass = jitter(self.rng, GLASS, 12)
        p.detail("polygon", cam.front(ca, x0 + 0.2, x1 - 0.2, body_top + 0.05, roof - 0.07), glass, 200)
        if cxs is not None:
            p.detail("polygon", cam.side(cxs, ca + 0.15, cb - 0.12, body_top + 0.05, roof - 0.07), glass, 190)
        lamp = (200, 30, 30) if d > 0 else (235, 230, 200)
        for lx in (x0 + 0.08, x1 - 0.33):
            p.detail("polygon", cam.front(z, lx, lx + 0.25, body_top - 0.25, body_top - 0.1), lamp, 255)
        p.detail("polygon", cam.front(z, x - 0.26, x + 0.26, 0.38, 0.5), (230, 230, 225), 245)  # number plate
        for wx in (x0 + 0.05, x1 - 0.3):  # tyres under the bumper
            p.shape("polygon", cam.front(z + 0.6, wx, wx + 0.25, 0, 0.3), CAR, inst, (20, 20, 20), 200)

    def truck(self, x: float, z: float, d: int) -> None:
        p, cam = self.p, self.cam
        inst = p.instance(TRUCK)
        w, length = self.u(2.3, 2.55), self.u(7, 10)
        cab_len, cab = self.u(1.8, 2.4), self.color(CAR_COLORS + BUS_COLORS, 10)
        cargo = self.color([(235, 235, 230), (200, 200, 195), (150, 40, 30), (40, 70, 130), (110, 110, 100)], 10)
        x0, x1, z1 = x - w / 2, x + w / 2, z + length
        self.shadow(x0, x1, z, z1)
        if d > 0:  # driving away: the cargo box is in front of the cab
            xs, _ = self.box(TRUCK, inst, x0, x1, 0.5, 2.9, z1 - cab_len, z1, cab)
            xb, _ = self.box(TRUCK, inst, x0, x1, 0.9, self.u(3.3, 3.9), z, z1 - cab_len - 0.2, cargo)
            self.wheels(TRUCK, inst, xb, (z + 1.2, z + 2.4, z1 - 1.2), 0.48)
            p.detail("polygon", cam.front(z, x - 0.05, x + 0.05, 1.0, 3.2), scaled(cargo, 0.75))  # door seam
        else:
            xb, _ = self.box(TRUCK, inst, x0, x1, 0.9, self.u(3.3, 3.9), z + cab_len + 0.2, z1, cargo)
            xs, _ = self.box(TRUCK, inst, x0, x1, 0.5, 2.9, z, z + cab_len, cab)
            p.detail("polygon", cam.front(z, x0 + 0.15, x1 - 0.15, 1.7, 2.7), jitter(self.rng, GLASS, 10), 200)
            self.wheels(TRUCK, inst, xs, (z + 1.0, z1 - 1.2), 0.48)
        p.shape("polygon", cam.front(z + 0.5, x0 + 0.1, x1 - 0.1, 0, 0.9), TRUCK, inst, (25, 25, 25), 200)

    def bus(self, x: float, z: float, d: int) -> None:
        p, cam = self.p, self.cam
        inst = p.instance(BUS)
        w, length, h = 2.55, self.u(11, 13), self.u(2.9, 3.2)
        color = self.color(BUS_COLORS, 10)
        x0, x1, z1 = x - w / 2, x + w / 2, z + length
        self.shadow(x0, x1, z, z1)
        xs, _ = self.box(BUS, inst, x0, x1, 0.3, h, z, z1, color)
        glass = jitter(self.rng, GLASS, 10)
        if xs is not None:
            for zz in np.arange(z + 0.8, z1 - 1.5, self.u(1.3, 1.8)):
                p.detail("polygon", cam.side(xs, zz, zz + 1.15, 1.2, h - 0.35), glass, 190)
        p.detail("polygon", cam.front(z, x0 + 0.1, x1 - 0.1, 1.3 if d < 0 else 1.7, h - 0.2), glass, 200)
        p.detail("polygon", cam.front(z, x0 + 0.4, x1 - 0.4, h - 0.35, h - 0.1), (240, 170, 40), 255)  # route display
        self.wheels(BUS, inst, xs, (z + 2.5, z1 - 3.0), 0.5)
        p.shape("polygon", cam.front(z + 0.8, x0 + 0.05, x1 - 0.05, 0, 0.35), BUS, inst, (25, 25, 25), 200)

    def tram(self, x: float, z: float) -> None:
        p, cam = self.p, self.cam
        inst = p.instance(TRAIN)
        w, length, h = 2.4, self.u(25, 40), 3.4
        color, band = self.color(TRAIN_COLORS, 10), self.color(TRAIN_COLORS + [(40, 40, 45)], 10)
        x0, x1, z1 = x - w / 2, x + w / 2, z + length
        xs, _ = self.box(TRAIN, inst, x0, x1, 0.35, h, z, z1, color)
        glass = jitter(self.rng, GLASS, 10)
        if xs is not None:
            p.detail("polygon", cam.side(xs, z, z1, 0.35, 0.9), band, 180)
            for zz in np.arange(z + 1, z1 - 1, self.u(1.6, 2.2)):
                p.detail("polygon", cam.side(xs, zz, zz + 1.3, 1.3, h - 0.5), glass, 185)
        p.detail("polygon", cam.front(z, x0 + 0.15, x1 - 0.15, 1.2, h - 0.3), glass, 200)
        for sgn in (-1, 1):  # pantograph
            p.shape(
                "line",
                [cam.p(x, h, z + 4), cam.p(x + sgn * 0.5, h + 1.1, z + 4.5)],
                TRAIN,
                inst,
                (50, 50, 50),
                220,
                width=self.width(0.05, z),
            )

    def two_wheeler(self, x: float, z: float, label: int) -> None:
        """A motorcycle or bicycle seen from behind/in front, with its rider."""
        p, cam = self.p, self.cam
        inst = p.instance(label)
        rider = p.instance(RIDER)
        dark = self.color([(25, 25, 25), (40, 40, 45), (120, 20, 20), (20, 40, 90)], 10)
        if label == MOTORCYCLE:
            p.shape("polygon", cam.front(z, x - 0.09, x + 0.09, 0, 0.62), label, inst, (20, 20, 20), 220)
            p.shape("polygon", cam.front(z - 0.1, x - 0.3, x + 0.3, 0.35, 0.85), label, inst, dark, 225)
            p.shape(
                "line",
                [cam.p(x - 0.42, 1.05, z + 1.2), cam.p(x + 0.42, 1.05, z + 1.2)],
                label,
                inst,
                (30, 30, 30),
                225,
                width=self.width(0.05, z),
            )
            p.detail("polygon", cam.front(z - 0.1, x - 0.12, x + 0.12, 0.7, 0.78), (200, 30, 30), 255)
            seat = 0.85
        else:
            p.shape("polygon", cam.front(z, x - 0.025, x + 0.025, 0, 0.68), label, inst, (20, 20, 20), 220)
            p.shape(
                "line",
                [cam.p(x - 0.3, 1.0, z + 0.9), cam.p(x + 0.3, 1.0, z + 0.9)],
                label,
                inst,
                dark,
                225,
                width=self.width(0.03, z),
            )
            seat = 0.9
        self.person(x, z - 0.05, RIDER, riding=True, side_on=False, base=seat, inst=rider)

    def cyclist_side(self, x: float, z: float) -> None:
        """A cyclist crossing: the bicycle side-on with its rider."""
        inst = self.p.instance(BICYCLE)
        self.bicycle_side(x, z + 0.05, inst=inst)
        self.person(x, z, RIDER, riding=True, side_on=True, base=0.92)
