"""Procedural street scenes that look and behave like Cityscapes frames.

Void classes occur too (ego vehicle, rectification border, out of roi, static and dynamic objects, ground,
parking, rail track, guard rail). Colour alone does not separate the classes: colours vary per instance and
overlap between classes (grey walls, buildings, roads and cars), and the picture gets per-class texture,
shading, noise and blur (:mod:`.painter`).

Modules: :mod:`.painter` (camera, layered drawing, photographic finish), :mod:`.kit` (what every part
shares), :mod:`.props` (street furniture, nature), :mod:`.actors` (people, vehicles), :mod:`.street`
(layout and composition).
"""

from .street import FEATURES, Scene, render_scene

__all__ = ["FEATURES", "Scene", "render_scene"]
