"""The street's layout (sides, lanes) and its backdrop: skyline, road, sidewalks, markings, tram track and
the facades along both sides. Mixed into the scene builder in ``street.py``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kit import ASPHALT, BUILDING_COLORS, CLOTHES, FAR, FOLIAGE, GLASS, GRASS, PAVING, Kit
from .painter import (
    BUILDING,
    GROUND,
    PARKING,
    RAIL_TRACK,
    ROAD,
    SIDEWALK,
    TERRAIN,
    VEGETATION,
    Color,
    jitter,
    scaled,
)


@dataclass
class Side:
    """One side of the street; widths in metres, measured outwards from the road's edge."""

    s: int  # -1 left, +1 right
    curb: float  # |x| of the road's edge
    parking: float
    verge: float
    walk: float
    yard: float

    @property
    def walk_in(self) -> float:
        return self.curb + self.parking + self.verge

    @property
    def walk_out(self) -> float:
        return self.walk_in + self.walk

    @property
    def facade(self) -> float:
        return self.walk_out + self.yard


@dataclass
class Street:
    sides: tuple[Side, Side]
    lanes: list[tuple[float, int]]  # lane centre x, direction (+1: driving away, we see rears; -1: oncoming)
    lane_lines: list[float]
    rail: float | None  # x of a tram track
    end: float | None  # z of a building across the end of the street




class Backdrop(Kit):
    """Draws everything that is not an object on its own: sky line, ground, markings, buildings."""

    crossing: float | None  # z of a zebra crossing, when the street has one (set by ``markings``)

    # ---- background and ground -------------------------------------------------------------------------
    def skyline(self) -> None:
        """Distant blocks and tree lines along the horizon (what shows through gaps and down the street)."""
        p, cam, x = self.p, self.cam, -10.0
        while x < self.w + 10:
            bw = self.u(0.03, 0.12) * self.w
            top = cam.cy - self.u(0.01, 0.18) * self.h
            if self.chance(0.3):
                c = self.color(FOLIAGE, 15)
                for _ in range(4):
                    cx, r = x + self.u(0, bw), self.u(0.2, 0.5) * bw
                    p.shape("ellipse", [cx - r, top, cx + r, cam.cy + 2], VEGETATION, VEGETATION, c, 235)
            else:
                c = scaled(self.color(BUILDING_COLORS, 15), 0.9)
                p.shape("rectangle", [x, top, x + bw, cam.cy + 2], BUILDING, BUILDING, c, 235)
            x += bw * self.u(0.6, 1.0)

    def ground(self, st: Street) -> None:
        p, cam = self.p, self.cam
        paving, asphalt, grass = self.color(PAVING, 10), self.color(ASPHALT, 8), self.color(GRASS, 12)
        p.shape("rectangle", [0, cam.cy + 1, self.w, self.h], SIDEWALK, SIDEWALK, paving)
        road_l, road_r = -st.sides[0].curb, st.sides[1].curb
        p.shape("polygon", cam.flat(0, road_l, road_r, 0, FAR), ROAD, ROAD, asphalt)
        for side in st.sides:
            s = side.s
            strips = [
                (side.curb, side.curb + side.parking, PARKING, scaled(asphalt, 1.12)),
                (side.curb + side.parking, side.walk_in, TERRAIN, grass),
                (side.walk_in, side.walk_out, SIDEWALK, paving),
                (side.walk_out, side.facade, TERRAIN, jitter(self.rng, grass, 10)),
            ]
            for a, b, label, color in strips:
                if b > a:
                    p.shape("polygon", cam.flat(0, s * a, s * b, 0, FAR), label, label, color)
            self.sidewalk_tiles(side, paving)
            if side.parking:
                for z in np.arange(self.u(2, 6), 60, 5.5):  # parking bay lines
                    p.detail(
                        "polygon",
                        cam.flat(0, s * side.curb, s * (side.curb + side.parking), z, z + 0.1),
                        (200, 200, 195),
                    )
            if self.chance(0.3):  # a patch of bare ground (void) on the sidewalk or the yard
                z = self.u(5, 30)
                a = self.u(side.walk_in, side.facade - 0.5)
                p.shape(
                    "polygon",
                    cam.flat(0, s * a, s * (a + self.u(0.5, 2)), z, z + self.u(1, 4)),
                    GROUND,
                    GROUND,
                    self.color([(120, 100, 80), (110, 105, 95)], 10),
                )
        self.markings(st, asphalt)
        if st.rail is not None:
            self.rail_track(st.rail)
        shady = st.sides[0] if self.sun > 0 else st.sides[1]  # buildings on the sunny side cast shadows
        depth = self.u(1.0, 7.0)
        p.darken(cam.flat(0, shady.s * (shady.facade + 1), shady.s * (shady.facade - depth), 0, FAR), 165)

    def sidewalk_tiles(self, side: Side, paving: Color) -> None:
        p, cam, s = self.p, self.cam, side.s
        joint = scaled(paving, 0.8)
        p.detail("polygon", cam.flat(0, s * side.walk_in, s * (side.walk_in + 0.25), 0, FAR), scaled(paving, 1.15))
        step = self.u(0.5, 1.2)
        for a in np.arange(side.walk_in + step, side.walk_out, step):
            p.detail("polygon", cam.flat(0, s * a, s * (a + 0.03), 0, 40), joint)
        for z in np.arange(self.u(0, step), 30, step):
            p.detail("polygon", cam.flat(0, s * side.walk_in, s * side.walk_out, z, z + 0.03), joint)

    def markings(self, st: Street, asphalt: Color) -> None:
        p, cam = self.p, self.cam
        paint = jitter(self.rng, (215, 215, 210), 15)
        road_l, road_r = -st.sides[0].curb, st.sides[1].curb
        for x in (road_l + 0.25, road_r - 0.25):  # solid edge lines
            p.detail("polygon", cam.flat(0, x - 0.06, x + 0.06, 0, FAR), paint)
        for x in st.lane_lines:
            dash, gap = self.u(2.5, 4), self.u(5, 8)
            for z in np.arange(self.u(0, dash + gap), 200, dash + gap):
                p.detail("polygon", cam.flat(0, x - 0.06, x + 0.06, z, z + dash), paint)
        for _ in range(int(self.rng.integers(0, 5))):  # asphalt repairs and manhole covers
            z, x = self.u(4, 40), self.u(road_l, road_r)
            size = self.u(0.6, 3)
            p.detail("polygon", cam.flat(0, x, x + size, z, z + size * self.u(0.5, 2)), jitter(self.rng, asphalt, 18))
        if self.chance(0.35):  # zebra crossing and a stop line
            z = self.u(7, 30)
            for x in np.arange(road_l + 0.5, road_r - 0.5, 1.0):
                p.detail("polygon", cam.flat(0, x, x + 0.5, z, z + 4), paint)
            p.detail("polygon", cam.flat(0, road_l + 0.5, road_r - 0.5, z - 1.5, z - 1.1), paint)
            self.crossing = z

    def rail_track(self, x: float) -> None:
        p, cam = self.p, self.cam
        p.shape("polygon", cam.flat(0, x - 1.0, x + 1.0, 0, FAR), RAIL_TRACK, RAIL_TRACK, (95, 90, 88))
        for z in np.arange(self.u(0, 1), 40, 0.65):  # sleepers, then the rails on top
            p.detail("polygon", cam.flat(0, x - 0.95, x + 0.95, z, z + 0.22), (110, 95, 80))
        for r in (-0.72, 0.72):
            p.detail("polygon", cam.flat(0.02, x + r - 0.04, x + r + 0.04, 0, FAR), (175, 175, 180))

    # ---- buildings -------------------------------------------------------------------------------------
    def cross_building(self, z: float) -> None:
        p, cam = self.p, self.cam
        height, color = self.u(8, 25), self.color(BUILDING_COLORS)
        p.shape("polygon", cam.front(z, -200, 200, 0, height), BUILDING, BUILDING, color, 230)
        fh, spacing = self.u(2.8, 3.4), self.u(2.5, 4)
        if cam.px(1.0, z) < 1.5:
            return
        glass = jitter(self.rng, GLASS, 15)
        for y in np.arange(self.u(2.5, 3.5), height - 1.5, fh):
            for x in np.arange(-60 + self.u(0, spacing), 60, spacing):
                p.detail("polygon", cam.front(z, x, x + 1.3, y, y + 1.5), jitter(self.rng, glass, 10))

    def facades(self, side: Side, zmax: float) -> None:
        z, spans = self.u(-3, 3), []
        while z < zmax:
            length = self.u(8, 30)
            if self.chance(0.12):  # a gap: side street or courtyard
                z += self.u(4, 12)
                continue
            spans.append((z, min(z + length, zmax)))
            z += length
        for z0, z1 in reversed(spans):
            self.facade(side, z0, z1)

    def facade(self, side: Side, z0: float, z1: float) -> None:
        p, cam, x = self.p, self.cam, side.s * side.facade
        height = self.u(7, 26)
        color = self.color(BUILDING_COLORS, 15)
        light = 235 if side.s == self.sun else 185
        p.shape("polygon", cam.side(x, z0, z1, 0, height), BUILDING, BUILDING, color, light)
        p.detail("polygon", cam.side(x, z0, z1, height - 0.5, height), scaled(color, 0.8))  # cornice
        glass = jitter(self.rng, GLASS, 15)
        fh, spacing, ww, wh = self.u(2.8, 3.4), self.u(2.4, 4.0), self.u(1.0, 1.6), self.u(1.3, 1.8)
        frame = scaled(color, 1.15)
        for zc in np.arange(z0 + self.u(0.5, spacing), z1 - ww, spacing):
            if cam.px(ww, zc) < 1.0 or zc < 0:
                continue
            for y in np.arange(3.6, height - 1.8, fh):
                p.detail("polygon", cam.side(x, zc - 0.12, zc + ww + 0.12, y - 0.12, y + wh + 0.12), frame)
                p.detail("polygon", cam.side(x, zc, zc + ww, y, y + wh), jitter(self.rng, glass, 12))
        if self.chance(0.6):  # shop front: big windows, an awning or a sign board
            z = z0 + self.u(0.5, 2)
            while z < z1 - 3:
                wz = self.u(2, 5)
                if z > 0:
                    p.detail("polygon", cam.side(x, z, min(z + wz, z1 - 0.5), 0.3, 2.6), jitter(self.rng, GLASS, 25))
                z += wz + self.u(0.6, 2)
            band = self.color(CLOTHES, 30)
            p.detail("polygon", cam.side(x, max(z0, 0.5), z1, 2.8, 3.3), band)

