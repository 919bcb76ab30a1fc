"""Street furniture and nature: walls, fences, hedges, guard rails, trees, street lamps, traffic signs and
lights on their poles, void objects (bins, bollards, prams), and the camera's own bonnet and borders."""

from __future__ import annotations

import numpy as np

from .kit import (
    CLOTHES,
    FENCE_COLORS,
    FOLIAGE,
    Kit,
)
from .painter import (
    BORDER,
    DYNAMIC,
    EGO_VEHICLE,
    FENCE,
    GUARD_RAIL,
    OUT_OF_ROI,
    POLE,
    STATIC,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
    WALL,
    Color,
    jitter,
    scaled,
)


class Props(Kit):
    """Draws one fixed object each; ``x``, ``z`` in metres, the object standing on the ground there."""

    def wall(self, x: float, z0: float, z1: float, color: Color, height: float) -> None:
        p, cam, h = self.p, self.cam, height
        p.shape("polygon", cam.side(x, z0, z1, 0, h), WALL, WALL, color, 215)
        p.detail("polygon", cam.side(x, z0, z1, h - 0.12, h), scaled(color, 1.15))  # coping
        p.detail("polygon", cam.side(x, z0, z0 + 0.05, 0, h), scaled(color, 0.75))  # joint

    def fence(self, x: float, z0: float, z1: float, color: Color, kind: str, height: float) -> None:
        p, cam = self.p, self.cam

        def bar(za: float, zb: float, ya: float, yb: float) -> None:
            p.shape("polygon", cam.side(x, za, zb, ya, yb), FENCE, FENCE, color, 220)

        if kind == "panel":  # wooden or plastic panels with vertical boards
            p.shape("polygon", cam.side(x, z0, z1, 0.05, height), FENCE, FENCE, color, 220)
            for z in np.arange(z0, z1, 0.25):
                p.detail("polygon", cam.side(x, z, z + 0.03, 0.05, height), scaled(color, 0.7))
            return
        for z in np.arange(z0, z1, 1.5 if kind == "railing" else 2.5):  # posts
            bar(z, z + 0.08, 0, height)
        bar(z0, z1, height - 0.06, height)
        if kind == "railing":
            bar(z0, z1, height * 0.45, height * 0.45 + 0.05)
            for z in np.arange(z0, z1, 0.14):  # balusters
                if cam.px(0.14, z) >= 2.5:
                    bar(z, z + 0.025, 0.1, height)
        else:  # chain-link mesh: a lattice of thin diagonals
            width = 1
            for z in np.arange(z0, z1, 0.35):
                for a, b in ((z, z + height * 0.6), (z + height * 0.6, z)):
                    p.shape("line", [cam.p(x, 0.05, a), cam.p(x, height, b)], FENCE, FENCE, color, 220, width=width)

    def hedge(self, x: float, z0: float, z1: float, color: Color, height: float) -> None:
        p, cam = self.p, self.cam
        p.shape("polygon", cam.side(x, z0, z1, 0, height), VEGETATION, VEGETATION, color, 215)
        p.shape("polygon", cam.flat(height, x - 0.4, x + 0.4, z0, z1), VEGETATION, VEGETATION, scaled(color, 1.1), 245)

    def guard_rail(self, x: float, z0: float, z1: float, color: Color) -> None:
        p, cam = self.p, self.cam
        for z in np.arange(z0, z1, 2.0):
            p.shape("polygon", cam.side(x, z, z + 0.1, 0, 0.75), GUARD_RAIL, GUARD_RAIL, scaled(color, 0.8))
        p.shape("polygon", cam.side(x, z0, z1, 0.5, 0.8), GUARD_RAIL, GUARD_RAIL, color, 235)

    def tree(self, x: float, z: float) -> None:
        p, cam, rng = self.p, self.cam, self.rng
        trunk_h, r = self.u(2.2, 3.5), self.u(1.3, 3.2)
        bark = jitter(rng, (85, 70, 55), 15)
        tw = self.u(0.2, 0.4)
        p.shape("polygon", cam.front(z, x - tw / 2, x + tw / 2, 0, trunk_h + r * 0.5), VEGETATION, VEGETATION, bark)
        base = self.color(FOLIAGE, 12)
        top = trunk_h + r * self.u(1.4, 2.2)
        for _ in range(int(rng.integers(6, 14))):
            cx, cy = x + self.u(-r, r) * 0.8, self.u(trunk_h + r * 0.4, top - r * 0.3)
            rr = r * self.u(0.35, 0.7)
            x0, y0 = cam.p(cx - rr, cy + rr, z)
            x1, y1 = cam.p(cx + rr, cy - rr, z)
            p.shape("ellipse", [x0, y0, x1, y1], VEGETATION, VEGETATION, jitter(rng, base, 14), int(self.u(190, 255)))

    def lamp(self, x: float, z: float, s: int) -> None:
        p, cam = self.p, self.cam
        h, color = self.u(6, 9), self.color(FENCE_COLORS[:3] + [(140, 140, 140)], 10)
        w = 0.14
        p.shape("polygon", cam.front(z, x - w / 2, x + w / 2, 0, h), POLE, POLE, color, 225)
        arm = -s * self.u(0.8, 2.0)  # towards the road
        p.shape("line", [cam.p(x, h, z), cam.p(x + arm, h + 0.3, z)], POLE, POLE, color, 225, width=self.width(0.08, z))
        p.shape(
            "polygon",
            cam.front(z, x + arm - 0.3, x + arm + 0.3, h + 0.05, h + 0.3),
            POLE,
            POLE,
            scaled(color, 0.8),
            230,
        )

    def sign_post(self, x: float, z: float) -> None:
        p, cam, rng = self.p, self.cam, self.rng
        h = self.u(2.0, 2.8)
        p.shape("polygon", cam.front(z, x - 0.035, x + 0.035, 0, h), POLE, POLE, (150, 150, 152), 230)
        for k in range(1 + int(rng.random() < 0.3)):
            self.sign(x, h - k * 0.75, z)

    def sign(self, x: float, top: float, z: float) -> None:
        """A traffic sign face, ~0.6 m, centred on x with its top at ``top``."""
        p, cam = self.p, self.cam
        r = self.u(0.28, 0.38)
        x0, y0 = cam.p(x - r, top, z)
        x1, y1 = cam.p(x + r, top - 2 * r, z)
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        kind = self.pick(["ring", "blue", "triangle", "square", "diamond", "stop", "board"])
        red, white, blue = (
            jitter(self.rng, (200, 30, 35), 15),
            jitter(self.rng, (235, 235, 230), 8),
            jitter(self.rng, (30, 80, 170), 15),
        )
        S = TRAFFIC_SIGN
        if kind in ("ring", "blue"):
            p.shape("ellipse", [x0, y0, x1, y1], S, S, red if kind == "ring" else blue, 240)
            inner = [cx - rx * 0.7, cy - ry * 0.7, cx + rx * 0.7, cy + ry * 0.7]
            p.detail("ellipse", inner, white if kind == "ring" else blue)
            if kind == "blue":
                p.detail(
                    "polygon",
                    [(cx - rx * 0.1, cy + ry * 0.5), (cx + rx * 0.1, cy + ry * 0.5), (cx, cy - ry * 0.5)],
                    white,
                )
        elif kind == "triangle":
            p.shape("polygon", [(cx, y0), (x1, y1), (x0, y1)], S, S, red, 240)
            p.detail(
                "polygon",
                [(cx, y0 + ry * 0.5), (cx + rx * 0.65, y1 - ry * 0.15), (cx - rx * 0.65, y1 - ry * 0.15)],
                white,
            )
        elif kind == "square":
            p.shape("rectangle", [x0, y0, x1, y1], S, S, blue, 240)
            p.detail("rectangle", [cx - rx * 0.3, cy - ry * 0.6, cx + rx * 0.35, cy + ry * 0.6], white)
        elif kind == "diamond":
            p.shape("polygon", [(cx, y0), (x1, cy), (cx, y1), (x0, cy)], S, S, white, 240)
            p.detail(
                "polygon",
                [(cx, y0 + ry * 0.3), (x1 - rx * 0.3, cy), (cx, y1 - ry * 0.3), (x0 + rx * 0.3, cy)],
                jitter(self.rng, (240, 195, 40), 12),
            )
        elif kind == "stop":
            k = 0.41
            p.shape(
                "polygon",
                [
                    (x0 + rx * k, y0),
                    (x1 - rx * k, y0),
                    (x1, cy - ry * k * 1.4),
                    (x1, cy + ry * k * 1.4),
                    (x1 - rx * k, y1),
                    (x0 + rx * k, y1),
                    (x0, cy + ry * k * 1.4),
                    (x0, cy - ry * k * 1.4),
                ],
                S,
                S,
                red,
                240,
            )
            p.detail("rectangle", [cx - rx * 0.6, cy - ry * 0.1, cx + rx * 0.6, cy + ry * 0.1], white)
        else:  # a rectangular board: direction or information sign
            board = self.pick([(240, 200, 50), (235, 235, 230), (30, 110, 60), (30, 80, 170)])
            p.shape(
                "rectangle",
                [x0 - rx * 0.8, y0 + ry * 0.4, x1 + rx * 0.8, y1 - ry * 0.2],
                S,
                S,
                jitter(self.rng, board, 10),
                240,
            )  # type: ignore[arg-type]
            p.detail("rectangle", [x0 - rx * 0.5, cy - ry * 0.1, x1 + rx * 0.5, cy + ry * 0.05], (40, 40, 40))

    def traffic_light_post(self, x: float, z: float, s: int) -> None:
        p, cam = self.p, self.cam
        h = self.u(2.8, 3.8)
        color = self.color([(90, 90, 95), (60, 70, 65), (150, 150, 150)], 8)
        p.shape("polygon", cam.front(z, x - 0.07, x + 0.07, 0, h), POLE, POLE, color, 225)
        self.traffic_light(x, h + 0.95, z)
        if self.chance(0.4):  # a mast arm over the road with a second head
            reach = x - s * self.u(3, 6)
            arm_h = self.u(5.0, 6.0)
            p.shape("polygon", cam.front(z, x - 0.09, x + 0.09, h, arm_h), POLE, POLE, color, 225)
            p.shape(
                "line", [cam.p(x, arm_h, z), cam.p(reach, arm_h, z)], POLE, POLE, color, 225, width=self.width(0.1, z)
            )
            self.traffic_light(reach, arm_h - 0.05, z)
        if self.chance(0.5):
            self.sign(x, h - 0.3, z - 0.01)

    def traffic_light(self, x: float, top: float, z: float) -> None:
        p, cam = self.p, self.cam
        housing = self.color([(35, 35, 35), (50, 55, 50), (70, 70, 60)], 8)
        w, hh = 0.34, 0.95
        x0, y0 = cam.p(x - w / 2, top, z)
        x1, y1 = cam.p(x + w / 2, top - hh, z)
        p.shape("rectangle", [x0, y0, x1, y1], TRAFFIC_LIGHT, TRAFFIC_LIGHT, housing, 235)
        lit = int(self.rng.integers(0, 3))
        lamps = [(230, 40, 30), (240, 190, 40), (60, 220, 120)]
        r = (x1 - x0) * 0.32
        for k in range(3):
            cy = y0 + (y1 - y0) * (k + 0.5) / 3
            color = lamps[k] if k == lit else scaled(lamps[k], 0.25)
            p.detail("ellipse", [(x0 + x1) / 2 - r, cy - r, (x0 + x1) / 2 + r, cy + r], color, 255)

    def street_furniture(self, x: float, z: float) -> None:
        """Bins, bollards, advertising columns (static) and the odd pram or cart (dynamic): void classes."""
        p, cam = self.p, self.cam
        kind = self.pick(["bin", "bollard", "column", "cart"])
        if kind == "bin":
            p.shape(
                "polygon",
                cam.front(z, x - 0.3, x + 0.3, 0, 1.0),
                STATIC,
                STATIC,
                self.color([(40, 80, 50), (90, 90, 90), (200, 120, 30)]),
            )
        elif kind == "bollard":
            for k in range(3):
                p.shape("polygon", cam.front(z + k * 1.5, x - 0.06, x + 0.06, 0, 0.9), STATIC, STATIC, (70, 70, 72))
        elif kind == "column":
            p.shape("polygon", cam.front(z, x - 0.6, x + 0.6, 0, 3.0), STATIC, STATIC, self.color(CLOTHES, 30))
            p.detail("polygon", cam.front(z, x - 0.6, x + 0.6, 2.7, 3.0), (60, 60, 60))
        else:
            p.shape("polygon", cam.front(z, x - 0.35, x + 0.35, 0.15, 0.95), DYNAMIC, DYNAMIC, self.color(CLOTHES, 20))
            for dx in (-0.3, 0.3):
                x0, y0 = cam.p(x + dx - 0.1, 0.2, z)
                x1, y1 = cam.p(x + dx + 0.1, 0.0, z)
                p.shape("ellipse", [x0, y0, x1, y1], DYNAMIC, DYNAMIC, (25, 25, 25))

    def ego_and_borders(self) -> None:
        """The bonnet of the ego vehicle, the rectification border and out-of-roi corners (all void)."""
        p, w, h = self.p, self.w, self.h
        if self.chance(0.8):
            top = h * self.u(0.88, 0.95)
            edge = h * self.u(0.96, 1.0)
            pts = [(0, h), (0, edge)]
            pts += [(w * t, edge - (edge - top) * (1 - (2 * t - 1) ** 2)) for t in np.linspace(0, 1, 24)]
            pts += [(w, edge), (w, h)]
            paint = self.color([(30, 30, 32), (60, 60, 65), (120, 120, 125), (25, 30, 50)], 8)
            p.shape("polygon", pts, EGO_VEHICLE, EGO_VEHICLE, paint, 220)
            p.detail(
                "polygon",
                [(w * 0.3, h), (w * 0.45, top + (h - top) * 0.3), (w * 0.5, top + (h - top) * 0.3), (w * 0.4, h)],
                scaled(paint, 1.4),
            )  # a reflection
        if self.chance(0.6):
            b = max(1, round(w * self.u(0.002, 0.006)))
            for box in ([0, 0, b, h], [w - b, 0, w, h], [0, 0, w, b]):
                p.shape("rectangle", box, BORDER, BORDER, (0, 0, 0))
        if self.chance(0.3):
            c = w * self.u(0.02, 0.06)
            for pts in ([(0, h), (c, h), (0, h - c)], [(w, h), (w - c, h), (w, h - c)]):
                p.shape("polygon", pts, OUT_OF_ROI, OUT_OF_ROI, (0, 0, 0))
