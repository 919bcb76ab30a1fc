"""A street scene from layout to finished frame.

A level camera looks down a straight street: sky above the horizon; a road in perspective with lane markings,
zebra crossings and sometimes a tram track; parking strips, grass verges and sidewalks; facades with windows,
walls, fences and hedges; trees, street lamps, traffic lights and signs on poles; pedestrians, cyclists and
motorcyclists; cars, trucks, buses and trams. Everything is placed in metres and projected, so sizes shrink
with distance, and it is drawn back to front, so near objects hide far ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .actors import Actors
from .backdrop import Backdrop, Side, Street
from .kit import (
    FENCE_COLORS,
    FOLIAGE,
    WALL_COLORS,
)
from .painter import (
    PERSON,
    SKY,
    Color,
    Look,
    jitter,
)
from .props import Props

# Rarer things; generate_dataset features some in every frame so that any 20 consecutive frames hold them all.
FEATURES: tuple[str, ...] = (
    "train",
    "bus",
    "truck",
    "motorcycle",
    "rider",
    "bicycle",
    "wall",
    "fence",
    "terrain",
    "traffic light",
    "traffic sign",
)


@dataclass(frozen=True)
class Scene:
    """One rendered frame."""

    image: np.ndarray  # H x W x 3 uint8
    label_ids: np.ndarray  # H x W uint8, Cityscapes label ids
    instance_ids: np.ndarray  # H x W int32: label id, or id * 1000 + k for each instance


class _Scene(Props, Actors, Backdrop):
    """Builds one frame: layout, then back-to-front drawing."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], featured: Sequence[str]) -> None:
        super().__init__(rng, size)
        self.featured = set(featured)
        self.items: list[tuple[float, Callable[[], None]]] = []  # (depth, draw) for the back-to-front pass
        self.crossing: float | None = None  # z of a zebra crossing, when the street has one
        self.wall_side = int(rng.choice([-1, 1]))  # where a featured wall goes; a featured fence goes opposite

    def add(self, depth: float, fn: Callable[..., None], *args: object, **kw: object) -> None:
        self.items.append((depth, functools.partial(fn, *args, **kw)))

    def wants(self, feature: str, p: float) -> bool:
        return feature in self.featured or self.chance(p)

    def featured_on(self, feature: str, s: int) -> bool:
        """Whether ``feature`` is featured on side ``s`` (walls and fences on opposite sides, bicycles right)."""
        side = {"wall": self.wall_side, "fence": -self.wall_side}.get(feature, 1)
        return feature in self.featured and s == side

    # ---- the whole frame -------------------------------------------------------------------------------
    def render(self) -> Scene:
        st = self.layout()
        p, cam = self.p, self.cam
        p.shape("rectangle", [0, 0, self.w, self.h], SKY, SKY, (128, 128, 128))
        self.skyline()
        self.ground(st)
        if st.end is not None:
            self.cross_building(st.end)
        for side in st.sides:
            self.facades(side, st.end or 160.0)
        for side in st.sides:
            self.roadside(side, st)
        self.traffic(st)
        for _, draw in sorted(self.items, key=lambda item: -item[0]):
            draw()
        self.ego_and_borders()
        look = Look(
            exposure=self.u(0.8, 1.15),
            white_balance=(self.u(0.93, 1.07), 1.0, self.u(0.93, 1.07)),
            sky_top=jitter(self.rng, self.pick([(70, 110, 170), (120, 140, 165), (160, 165, 175)]), 15),
            sky_horizon=jitter(self.rng, self.pick([(170, 190, 210), (200, 205, 210), (185, 190, 190)]), 12),
            horizon_row=cam.cy,
            noise=self.u(2.0, 5.0),
            blur=self.u(0.4, 0.9) * self.w / 1024,
            vignette=self.u(0.1, 0.4),
        )
        image, label, inst = p.finish(look)
        return Scene(image, label, inst)

    def layout(self) -> Street:
        n = int(self.rng.integers(2, 5))
        lw = self.u(3.0, 3.6)
        ego = int(self.rng.integers(0, n))  # the camera drives in lane `ego`
        left, right = -(ego + 0.5) * lw, (n - ego - 0.5) * lw
        two_way = self.chance(0.7)
        lanes = [(left + (k + 0.5) * lw, 1 if (k >= ego or not two_way) else -1) for k in range(n)]
        rail = lanes[0][0] if self.wants("train", 0.15) else None
        sides = []
        for s, curb in ((-1, -left), (1, right)):
            terrain = "terrain" in self.featured and s == 1
            sides.append(
                Side(
                    s=s,
                    curb=curb,
                    parking=2.3 if self.chance(0.3) else 0.0,
                    verge=self.u(1.0, 3.0) if (terrain or self.chance(0.3)) else 0.0,
                    walk=self.u(2.0, 5.0),
                    yard=self.u(1.5, 6.0) if (terrain or self.chance(0.35)) else 0.0,
                )
            )
        lines = [left + k * lw for k in range(1, n)]
        return Street((sides[0], sides[1]), lanes, lines, rail, self.u(50, 150) if self.chance(0.6) else None)

    # ---- things along the street -----------------------------------------------------------------------
    def roadside(self, side: Side, st: Street) -> None:
        s, rng = side.s, self.rng
        # walls and fences along the property line, a railing at the curb, hedges in the yard
        if self.featured_on("wall", s) or self.chance(0.3):
            z0 = self.u(1, 15)
            self.long_thing(
                self.wall,
                side.s * (side.walk_out + 0.1),
                z0,
                z0 + self.u(8, 40),
                self.color(WALL_COLORS),
                height=self.u(0.8, 2.6),
            )
        if self.featured_on("fence", s) or self.chance(0.35):
            if side.verge and self.chance(0.5):
                x = side.s * (side.walk_in - 0.1)  # a railing between the verge and the sidewalk
            elif side.yard:
                x = side.s * (side.facade - 0.3)
            else:
                x = side.s * (side.walk_out - 0.05)
            z0 = self.u(1, 15)
            kind = self.pick(["railing", "mesh", "panel"])
            self.long_thing(
                self.fence, x, z0, z0 + self.u(8, 35), self.color(FENCE_COLORS), kind=kind, height=self.u(0.9, 1.9)
            )
        if side.yard and self.chance(0.5):
            z0 = self.u(2, 20)
            self.long_thing(
                self.hedge,
                side.s * (side.walk_out + side.yard * 0.5),
                z0,
                z0 + self.u(6, 25),
                self.color(FOLIAGE),
                height=self.u(0.8, 1.6),
            )
        if side.verge and self.chance(0.15):
            self.long_thing(self.guard_rail, side.s * (side.curb + 0.4), self.u(2, 10), self.u(20, 50), (170, 170, 175))
        # trees at the curb or in the yard
        if self.chance(0.65):
            curb = side.walk_in - side.verge * 0.5 if side.verge else side.walk_in + 0.5
            for z in np.arange(self.u(2, 12), 90, self.u(7, 14)):
                in_yard = side.yard > 2 and self.chance(0.3)
                self.add(z, self.tree, s * (side.walk_out + side.yard * 0.5 if in_yard else curb), z)
        # street lamps, sign posts, traffic lights
        for z in np.arange(self.u(3, 20), 120, self.u(18, 35)):
            self.add(z, self.lamp, s * (side.walk_in + 0.4), z, s)
        for _ in range(int(rng.integers(0, 3)) + (2 if "traffic sign" in self.featured else 0)):
            z = self.u(4, 40)
            self.add(z, self.sign_post, s * (side.walk_in + self.u(0.2, 0.8)), z)
        if "traffic light" in self.featured or self.crossing is not None or self.chance(0.3):
            z = self.crossing - self.u(1, 3) if self.crossing is not None else self.u(8, 30)
            self.add(z, self.traffic_light_post, s * (side.walk_in + 0.5), z, s)
        # people, parked bicycles, street furniture
        for _ in range(int(rng.integers(0, 5))):  # groups of one to three
            z0, x0 = self.u(3, 60), self.u(side.walk_in + 0.3, side.walk_out - 0.3)
            for _ in range(int(rng.integers(1, 4))):
                z = z0 + self.u(-1.5, 1.5)
                self.add(
                    z, self.person, s * min(max(x0 + self.u(-0.8, 0.8), side.walk_in + 0.2), side.walk_out), z, PERSON
                )
        if self.featured_on("bicycle", s) or self.chance(0.4):
            z0 = self.u(4, 15)
            for k in range(int(rng.integers(2, 7))):
                z = z0 + k * self.u(0.5, 0.9)
                self.add(z, self.bicycle_side, s * (side.walk_out - self.u(0.8, 1.2)), z)
        for _ in range(int(rng.integers(0, 3))):
            z = self.u(3, 40)
            self.add(z, self.street_furniture, s * self.u(side.walk_in + 0.3, side.walk_out - 0.3), z)

    def long_thing(self, draw: Callable[..., None], x: float, z0: float, z1: float, color: Color, **kw: object) -> None:
        """Walls, fences, hedges: cut into short pieces, each sorted by its own depth, so that people in front
        of a wall hide it and trees behind it are hidden by it."""
        z = z0
        while z < z1:
            zb = min(z + 3.0, z1)
            self.add((z + zb) / 2, draw, x, z, zb, color, **kw)
            z = zb

    # ---- traffic -------------------------------------------------------------------------------------
    def traffic(self, st: Street) -> None:
        rng = self.rng
        occupied: list[tuple[float, float, float]] = []  # (x, z0, z1) per lane

        def free(x: float, z0: float, z1: float) -> bool:
            return all(abs(x - ox) > 1.0 or z1 + 2 < oz0 or z0 > oz1 + 2 for ox, oz0, oz1 in occupied)

        def place(kind: str, lanes: list[tuple[float, int]], zlo: float, zhi: float) -> bool:
            for _ in range(12):
                x, d = lanes[int(rng.integers(len(lanes)))]
                length = {"car": 4.5, "truck": 9.0, "bus": 12.0, "motorcycle": 2.1, "cyclist": 1.8}[kind]
                z0 = self.u(zlo, zhi)
                if abs(x) < 1.0 and z0 < 7:  # nothing right in front of the ego vehicle's bonnet
                    continue
                if kind == "cyclist":
                    x = x + (st.sides[1].curb - x - 0.9) if x > 0 else x
                if free(x, z0, z0 + length):
                    occupied.append((x, z0, z0 + length))
                    self.add(z0, self.vehicle, kind, x + self.u(-0.3, 0.3), z0, d)
                    return True
            return False

        lanes = [ln for ln in st.lanes if st.rail is None or ln[0] != st.rail]
        for kind, zlo in (("bus", 12), ("truck", 10), ("motorcycle", 7), ("cyclist", 7)):
            feature = {"cyclist": "rider"}.get(kind, kind)
            if feature in self.featured:
                place(kind, lanes, zlo, zlo + 20)
        for _ in range(int(rng.integers(2, 9))):
            kind = self.pick(["car"] * 12 + ["truck", "bus", "motorcycle", "cyclist"])
            place(kind, lanes, 6, 90)  # type: ignore[arg-type]
        if st.rail is not None:
            z0 = self.u(8, 25) if "train" in self.featured else self.u(8, 60)
            self.add(z0, self.tram, st.rail, z0)
        for side in st.sides:
            if side.parking:
                z = self.u(2, 8)
                while z < 70:
                    length = self.u(4.0, 4.9)
                    if self.chance(0.8):
                        self.add(
                            z, self.car, side.s * (side.curb + side.parking / 2), z, self.pick([-1, 1]), length=length
                        )
                    z += length + self.u(0.6, 3)
        if self.crossing is not None:
            for _ in range(int(rng.integers(0, 4))):
                z = self.crossing + self.u(0.5, 3.5)
                x = self.u(-st.sides[0].curb, st.sides[1].curb)
                if self.chance(0.65):
                    self.add(z, self.person, x, z, PERSON, side_on=True)
                else:
                    self.add(z, self.cyclist_side, x, z)


def render_scene(rng: np.random.Generator, size: tuple[int, int], featured: Sequence[str] = ()) -> Scene:
    """Render one street scene of ``size`` (height, width); ``featured`` names from :data:`FEATURES` are
    always placed in the scene, near the camera (nearer things may still hide them)."""
    unknown = set(featured) - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose from {FEATURES}")
    return _Scene(rng, size, featured).render()
