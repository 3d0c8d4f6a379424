"""Formula-driven images: textures drawn from a few parametric families, with nothing downloaded.

What ``lwcnn pretrain`` learns from (issue 19). Surface inspection looks at textures (rolled or
brushed metal, woven fabric, grains and crystals, printed tracks, pitted or scaled surfaces), so
the families are texture processes, in the spirit of Baradad et al. (NeurIPS 2021: noise processes,
dead leaves) and Kataoka et al. (ACCV 2020: FractalDB's iterated function systems):

- ``spectral``: random-phase noise with a power-law spectrum, stretched along an orientation
  (from cloudy to brushed, rolled or streaked);
- ``gratings``: sums of periodic waves (sine, square, triangle) at a few orientations: woven cloth,
  solar-cell fingers, machined grooves;
- ``leaves``: dead leaves, occluding discs or rectangles with power-law sizes (scale, patches,
  granular surfaces);
- ``fractal``: the point density of a random iterated function system (FractalDB);
- ``cells``: Worley noise, distances to scattered seeds: grains, crystals, poly-silicon, cracked
  glaze;
- ``tracks``: Manhattan lines and pads, binarised: printed circuits, masks, laid-out parts;
- ``fibres``: many short strokes around an orientation: paper, felt, textile, crazing networks;
- ``pits``: scattered dots of varying size on a smooth ground: pitted, sprayed or sintered
  surfaces.

A *category* is one family with its parameters fixed (:func:`category_formula`, seeded by the
category's number); its *instances* draw new random phases, positions and a small jitter of those
parameters, and the photometric conditions of a line (gain, gamma, blur, sensor noise, a gradient of
light). Classifying categories is the formula-driven pretext of FractalDB. Everything derives from
the seeds: the same (category, instance seed) is the same image.

Images are float32 arrays in [0, 1], gray (H, W); :func:`colourise` makes RGB ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

#: The texture families, in the order categories cycle through them.
FAMILIES: tuple[str, ...] = ("spectral", "gratings", "leaves", "fractal", "cells", "tracks", "fibres", "pits")


@dataclass(frozen=True)
class Formula:
    """One category: a family and the parameters every instance shares (before jitter)."""

    category: int
    family: str
    params: dict[str, Any] = field(default_factory=dict)


def category_formula(category: int, seed: int = 0) -> Formula:
    """The formula of ``category`` (families in turn, parameters drawn from ``(seed, category)``)."""
    family = FAMILIES[category % len(FAMILIES)]
    rng = np.random.default_rng([seed, 7919, category])
    return Formula(category, family, _FORMULA_PARAMS[family](rng))


def texture(formula: Formula, size: int, rng: np.random.Generator) -> np.ndarray:
    """An instance of ``formula`` as the surface is: a gray (size, size) float32 image in [0, 1],
    before the lighting and camera (:func:`photometric`)."""
    return _normalised(_RENDERERS[formula.family](formula.params, size, rng))


def render(formula: Formula, size: int, rng: np.random.Generator) -> np.ndarray:
    """An instance of ``formula`` as a camera sees it: :func:`texture`, then :func:`photometric`."""
    return photometric(texture(formula, size, rng), rng)


def render_family(family: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A texture of ``family`` with parameters drawn afresh (no category): what defects paste in."""
    params = _FORMULA_PARAMS[family](rng)
    return _normalised(_RENDERERS[family](params, size, rng))


# --- the families: parameters of a category ---------------------------------------------------------


def _spectral_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "alpha": float(rng.uniform(1.0, 3.2)),  # spectral slope: 1 grainy ... 3 cloudy
        "stretch": float(rng.choice([1.0, 1.0, 2.0, 4.0, 12.0])),  # 12: streaks (rolled, brushed)
        "angle": float(rng.uniform(0, math.pi)),
        "cutoff": float(rng.uniform(0.0, 0.03)),  # lowest frequencies removed: no single big blob
    }


def _gratings_params(rng: np.random.Generator) -> dict[str, Any]:
    count = int(rng.integers(1, 4))
    base = rng.uniform(0, math.pi)
    return {
        "periods": [float(p) for p in rng.uniform(3, 24, count)],
        "angles": [float(base + a) for a in rng.choice([0, math.pi / 2, math.pi / 3, math.pi / 4], count)],
        "waves": [str(w) for w in rng.choice(["sine", "square", "triangle"], count)],
        "duty": float(rng.uniform(0.2, 0.8)),
        "weave": bool(rng.random() < 0.4),  # product instead of sum: a woven look
        "noise": float(rng.uniform(0.05, 0.3)),
    }


def _leaves_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "shape": str(rng.choice(["disc", "rect", "mixed"])),
        "alpha": float(rng.uniform(2.0, 3.5)),  # size distribution r^-alpha
        "rmin": float(rng.uniform(0.01, 0.04)),
        "rmax": float(rng.uniform(0.1, 0.35)),
        "texture": float(rng.uniform(0.0, 0.3)),  # noise within each leaf
        "binary": bool(rng.random() < 0.2),
    }


def _fractal_params(rng: np.random.Generator) -> dict[str, Any]:
    """An iterated function system as FractalDB draws one: 2-4 affine maps, rescaled until the
    sum of their singular values lies in a band that gives neither a point nor a smear."""
    maps = int(rng.integers(2, 5))
    while True:
        coefficients = rng.uniform(-1, 1, (maps, 6))
        sigma = sum(np.linalg.svd(c[:4].reshape(2, 2), compute_uv=False).sum() for c in coefficients)
        if 0.5 * (maps + 1) < sigma < 0.5 * (maps + 3):  # FractalDB's filling factor band
            break
    dets = np.abs([c[0] * c[3] - c[1] * c[2] for c in coefficients]) + 1e-3
    return {
        "maps": coefficients.tolist(),
        "weights": (dets / dets.sum()).tolist(),
        "points": int(rng.integers(20_000, 60_000)),
        "background": float(rng.uniform(0.0, 0.4)),
    }


def _cells_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "seeds": int(rng.integers(8, 120)),
        "mode": str(rng.choice(["f1", "edge", "flat"])),  # distance, cell borders, cell shades
        "stretch": float(rng.choice([1.0, 1.0, 2.0, 3.0])),
        "angle": float(rng.uniform(0, math.pi)),
    }


def _tracks_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "tracks": int(rng.integers(6, 40)),
        "width": float(rng.uniform(0.008, 0.04)),
        "pads": int(rng.integers(0, 25)),
        "diagonal": float(rng.uniform(0, 0.3)),  # share of 45-degree segments
        "invert": bool(rng.random() < 0.5),
    }


def _fibres_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "count": int(rng.integers(80, 600)),
        "length": float(rng.uniform(0.03, 0.3)),
        "angle": float(rng.uniform(0, math.pi)),
        "spread": float(rng.choice([0.1, 0.3, 0.8, math.pi])),  # pi: any orientation (a network)
        "curl": float(rng.uniform(0.0, 0.5)),
        "width": int(rng.integers(1, 3)),
    }


def _pits_params(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "count": int(rng.integers(20, 400)),
        "rmin": float(rng.uniform(0.003, 0.01)),
        "rmax": float(rng.uniform(0.015, 0.05)),
        "dark": bool(rng.random() < 0.7),
        "ground": float(rng.uniform(1.5, 3.0)),  # the ground's spectral slope
    }


_FORMULA_PARAMS: dict[str, Callable[[np.random.Generator], dict[str, Any]]] = {
    "spectral": _spectral_params,
    "gratings": _gratings_params,
    "leaves": _leaves_params,
    "fractal": _fractal_params,
    "cells": _cells_params,
    "tracks": _tracks_params,
    "fibres": _fibres_params,
    "pits": _pits_params,
}


# --- the families: rendering an instance -------------------------------------------------------------


def _jitter(value: float, rng: np.random.Generator, spread: float = 0.1) -> float:
    return value * float(rng.uniform(1 - spread, 1 + spread))


def spectral_noise(
    size: int, alpha: float, rng: np.random.Generator, stretch: float = 1.0, angle: float = 0.0,
    cutoff: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """Random-phase noise whose power falls as ``f ** -alpha``; ``stretch`` > 1 compresses the
    spectrum across ``angle``, which stretches the texture along it."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    cos, sin = math.cos(angle), math.sin(angle)
    along, across = fx * cos + fy * sin, -fx * sin + fy * cos
    radius = np.sqrt((along * stretch) ** 2 + across**2)
    radius[0, 0] = 1.0
    amplitude = radius ** (-alpha / 2)
    amplitude[radius < max(cutoff, 1.0 / size)] = 0.0
    phase = rng.uniform(0, 2 * math.pi, amplitude.shape)
    spectrum = amplitude * (np.cos(phase) + 1j * np.sin(phase))
    return np.fft.irfft2(spectrum, s=(size, size)).astype(np.float32)


def _render_spectral(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    return spectral_noise(
        size, _jitter(p["alpha"], rng), rng, p["stretch"], p["angle"] + rng.normal(0, 0.05), p["cutoff"]
    )


def _wave(phase: np.ndarray, kind: str, duty: float) -> np.ndarray:
    """A periodic wave of ``phase`` (in periods) in [-1, 1]."""
    frac = phase - np.floor(phase)
    if kind == "square":
        return np.where(frac < duty, 1.0, -1.0)
    if kind == "triangle":
        return 4 * np.abs(frac - 0.5) - 1
    return np.sin(2 * math.pi * phase)


def _render_gratings(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.ones((size, size), np.float32) if p["weave"] else np.zeros((size, size), np.float32)
    for period, angle, wave in zip(p["periods"], p["angles"], p["waves"], strict=True):
        period = _jitter(period, rng) * size / 128  # periods are given for 128 px
        angle += rng.normal(0, 0.03)
        phase = (xs * math.cos(angle) + ys * math.sin(angle)) / period + rng.uniform(0, 1)
        value = _wave(phase, wave, p["duty"]).astype(np.float32)
        out = out * (0.6 + 0.4 * value) if p["weave"] else out + value
    return out + p["noise"] * spectral_noise(size, 1.5, rng) * 3


def _render_leaves(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("F", (size, size), float(rng.uniform(0, 1)))
    draw = ImageDraw.Draw(canvas)
    rmin, rmax = p["rmin"] * size, p["rmax"] * size
    covered, area = 0.0, 3.0 * size * size  # enough leaves to cover the canvas about three times
    while covered < area:
        u = rng.uniform()  # inverse transform sampling of r^-alpha on [rmin, rmax]
        a = 1 - p["alpha"]
        r = (rmin**a + u * (rmax**a - rmin**a)) ** (1 / a)
        x, y = rng.uniform(-r, size + r, 2)
        shape = p["shape"] if p["shape"] != "mixed" else ("disc", "rect")[int(rng.integers(2))]
        tone = float(rng.uniform(0, 1))
        if shape == "disc":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tone)
        else:
            ratio = rng.uniform(0.3, 1.0)
            draw.rectangle([x - r, y - r * ratio, x + r, y + r * ratio], fill=tone)
        covered += math.pi * r * r
    image = np.asarray(canvas, dtype=np.float32)
    if p["texture"]:
        image = image + p["texture"] * spectral_noise(size, 2.0, rng) * 3
    if p["binary"]:
        image = (image > np.median(image)).astype(np.float32)
    return image


def _render_fractal(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    """The chaos game with many walkers at once (vectorised), points binned into pixels."""
    maps = np.asarray(p["maps"], np.float64) * rng.uniform(0.95, 1.05, (len(p["maps"]), 6))
    walkers = 2048
    steps = max(4, p["points"] // walkers)
    xy = rng.uniform(-1, 1, (walkers, 2))
    choices = rng.choice(len(maps), size=(steps + 8, walkers), p=p["weights"])
    points = []
    for step in range(steps + 8):
        m = maps[choices[step]]
        xy = np.stack(
            (
                m[:, 0] * xy[:, 0] + m[:, 1] * xy[:, 1] + m[:, 4],
                m[:, 2] * xy[:, 0] + m[:, 3] * xy[:, 1] + m[:, 5],
            ),
            axis=1,
        )
        if step >= 8:  # the first steps bring the walkers onto the attractor
            points.append(xy)
    cloud = np.concatenate(points)
    cloud = cloud[np.isfinite(cloud).all(axis=1)]
    if len(cloud) == 0:
        return spectral_noise(size, 2.0, rng)
    low, high = np.percentile(cloud, [1, 99], axis=0)
    span = float(max(high - low).max()) or 1.0
    angle = rng.uniform(0, 2 * math.pi)
    centred = (cloud - (low + high) / 2) / span
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pixels = ((centred @ rot.T) * rng.uniform(0.8, 1.6) + 0.5 + rng.uniform(-0.15, 0.15, 2)) * size
    cols, rows = pixels[:, 0].astype(np.int64), pixels[:, 1].astype(np.int64)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    density = np.bincount(rows[inside] * size + cols[inside], minlength=size * size).reshape(size, size)
    image = np.log1p(density.astype(np.float32))
    # FractalDB's images are filled shapes, not clouds of single pixels: a little blur joins them
    image = gaussian_filter(image, float(rng.uniform(0.5, 1.2)))
    image /= np.percentile(image[image > 0], 95) if (image > 0).any() else 1.0
    image = np.minimum(image, 1.0)
    if rng.random() < 0.5:  # the fractal dark on a light ground as often as light on dark
        image = 1 - image
    return image + p["background"] * spectral_noise(size, 2.5, rng)


def _render_cells(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    count = max(3, int(_jitter(p["seeds"], rng, 0.2) * (size / 128) ** 2))
    seeds = rng.uniform(0, size, (count, 2))
    step = 2 if size > 64 else 1  # distances on a half-resolution grid, then resized
    grid = np.arange(0, size, step, dtype=np.float32) + step / 2
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    cos, sin = math.cos(p["angle"]), math.sin(p["angle"])

    def warped(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # stretched along the angle
        return np.stack(((x * cos + y * sin) / p["stretch"], -x * sin + y * cos), axis=-1)

    tree = cKDTree(warped(seeds[:, 0], seeds[:, 1]))
    nearest, index = tree.query(warped(xs.ravel(), ys.ravel()), k=2)
    nearest = nearest.reshape(*xs.shape, 2)
    if p["mode"] == "f1":
        image = nearest[..., 0]
    elif p["mode"] == "edge":
        image = -np.exp(-(nearest[..., 1] - nearest[..., 0]) / 1.5)
    else:  # each cell a shade of its own, with a faint grain
        shades = rng.uniform(0, 1, count).astype(np.float32)
        image = shades[index[:, 0].reshape(xs.shape)] + 0.05 * rng.normal(size=xs.shape)
    image = image.astype(np.float32)
    if step > 1:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return image


def _render_tracks(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(_jitter(p["width"], rng, 0.2) * size))
    for _ in range(max(1, int(_jitter(p["tracks"], rng, 0.3)))):
        x, y = rng.uniform(0, size, 2)
        points = [(x, y)]
        for _ in range(int(rng.integers(1, 5))):  # a track: a few straight legs
            length = rng.uniform(0.1, 0.6) * size
            if rng.random() < p["diagonal"]:
                dx, dy = rng.choice([-1, 1], 2) * length / math.sqrt(2)
            elif rng.random() < 0.5:
                dx, dy = rng.choice([-1, 1]) * length, 0.0
            else:
                dx, dy = 0.0, rng.choice([-1, 1]) * length
            x, y = x + dx, y + dy
            points.append((x, y))
        draw.line(points, fill=255, width=width, joint="curve")
    for _ in range(int(p["pads"])):
        x, y = rng.uniform(0, size, 2)
        r = width * rng.uniform(1.0, 2.5)
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
        else:
            draw.rectangle([x - r, y - r, x + r, y + r], fill=255)
    image = np.asarray(canvas, dtype=np.float32) / 255
    return 1 - image if p["invert"] else image


def _render_fibres(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("F", (size, size), 0.0)
    draw = ImageDraw.Draw(canvas)
    count = int(_jitter(p["count"], rng, 0.2) * (size / 128) ** 2)
    for _ in range(max(1, count)):
        x, y = rng.uniform(0, size, 2)
        angle = p["angle"] + rng.uniform(-p["spread"], p["spread"])
        length = rng.uniform(0.3, 1.0) * p["length"] * size
        points = [(x, y)]
        for _ in range(4):  # four legs, each turning a little: curled fibres
            angle += rng.normal(0, p["curl"])
            x, y = x + math.cos(angle) * length / 4, y + math.sin(angle) * length / 4
            points.append((x, y))
        draw.line(points, fill=float(rng.uniform(0.3, 1.0)), width=p["width"])
    image = np.asarray(canvas, dtype=np.float32)
    return image + 0.15 * spectral_noise(size, 2.0, rng) * 3


def _render_pits(p: dict[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    ground = spectral_noise(size, p["ground"], rng)
    ground = (ground - ground.mean()) / (ground.std() + 1e-6) * 0.15 + 0.5
    canvas = Image.fromarray(ground.astype(np.float32), mode="F")
    draw = ImageDraw.Draw(canvas)
    rmin, rmax = p["rmin"] * size, p["rmax"] * size
    for _ in range(max(1, int(_jitter(p["count"], rng, 0.3) * (size / 128) ** 2))):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(rmin, rmax) * rng.uniform(0.7, 1.0)
        ratio = rng.uniform(0.5, 1.0)
        tone = rng.uniform(0.0, 0.25) if p["dark"] else rng.uniform(0.75, 1.0)
        draw.ellipse([x - r, y - r * ratio, x + r, y + r * ratio], fill=float(tone))
    return gaussian_filter(np.asarray(canvas, dtype=np.float32), 0.6)


_RENDERERS: dict[str, Callable[[dict[str, Any], int, np.random.Generator], np.ndarray]] = {
    "spectral": _render_spectral,
    "gratings": _render_gratings,
    "leaves": _render_leaves,
    "fractal": _render_fractal,
    "cells": _render_cells,
    "tracks": _render_tracks,
    "fibres": _render_fibres,
    "pits": _render_pits,
}


# --- what every instance goes through ----------------------------------------------------------------


def _normalised(image: np.ndarray) -> np.ndarray:
    """``image`` stretched to [0, 1] between its 1st and 99th percentiles (a constant one: 0.5)."""
    low, high = np.percentile(image, [1, 99])
    if high - low < 1e-6:
        return np.full(image.shape, 0.5, np.float32)
    return np.clip((image - low) / (high - low), 0, 1).astype(np.float32)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a line changes between parts and cameras: contrast and level, gamma, a little blur or
    sharpness, sensor noise, a gradient of light across the part."""
    size = image.shape[0]
    contrast = rng.uniform(0.35, 1.0)
    image = 0.5 + (image - 0.5) * contrast + rng.uniform(-0.25, 0.25) * (1 - contrast)
    image = np.clip(image, 0, 1) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.3:
        image = gaussian_filter(image, float(rng.uniform(0.4, 1.5)))
    if rng.random() < 0.4:  # a gradient of light
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        angle = rng.uniform(0, 2 * math.pi)
        image = image + rng.uniform(0.05, 0.3) * (xs * math.cos(angle) + ys * math.sin(angle))
    if rng.random() < 0.5:
        image = image + rng.normal(0, rng.uniform(0.005, 0.04), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def colourise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB (H, W, 3) image from a gray one: a random two-colour map (tinted metal, wood, green
    solder mask...) with its channels' levels apart, or the gray repeated."""
    if rng.random() < 0.5:
        return np.repeat(image[..., None], 3, axis=-1)
    dark, light = rng.uniform(0, 0.5, 3), rng.uniform(0.5, 1.0, 3)
    return (dark + image[..., None] * (light - dark)).astype(np.float32)
