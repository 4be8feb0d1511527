"""A CPU z-buffer rasterizer for the built-in faces, the whole head and the mask (NumPy + Numba).

``render(vertices [F, V, 3] mm, triangles [T, 3], colors [V, 3] or [F, V, 3]) -> uint8 [F, H, W, 3]``

* Camera: a pinhole looking at ``target`` from ``distance`` mm, orbiting by ``yaw`` (degrees, > 0 moves
  the camera toward the subject's left, so more of the left cheek shows) and ``pitch`` (> 0 moves it
  up, looking down at the face). One camera for every frame, or one per frame.
* Shading: per pixel, deferred. A first pass keeps the nearest triangle and its barycentrics per pixel;
  a second shades each visible pixel once from the interpolated normal (per-vertex normals,
  area-weighted, recomputed every frame): a key light from the upper left, a dimmer fill from the
  right, ambient, optional wrap (soft terminator) and rim terms, and a Blinn-Phong highlight scaled by a
  per-vertex ``specular`` strength (eyes shine, hair does not). Albedo is treated as sRGB, lit in linear
  light and encoded back to sRGB. Triangles seen from behind are drawn
  in ``Lighting.interior`` (the inside of the head), so no hole ever shows the background.
* ``supersample`` renders at ``size * supersample`` and averages down (anti-aliasing).

Frames are rendered in parallel (one Numba thread per frame); ``numba.set_num_threads`` sets the
number of threads. The output is a pure function of the inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from painface.errors import InputError
from painface.face.color import linear_to_srgb, srgb_to_linear


@dataclass(frozen=True)
class Camera:
    """A perspective camera orbiting ``target`` (mm, head frame). Angles in degrees, fov vertical."""

    yaw: float = 0.0
    pitch: float = 0.0
    distance: float = 650.0
    fov: float = 20.0
    target: tuple[float, float, float] = (0.0, -8.0, 10.0)

    def position(self) -> np.ndarray:
        """The camera's position (mm, head frame)."""
        y, p = math.radians(self.yaw), math.radians(self.pitch)
        eye_dir = np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])
        return np.asarray(self.target, dtype=np.float64) + self.distance * eye_dir

    def view(self) -> np.ndarray:
        """World -> camera transform ``[3, 4]`` (camera looks down its -z axis, +y up)."""
        for name in ("yaw", "pitch", "distance", "fov"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"camera.{name}: expected a finite number, got {getattr(self, name)!r}")
        if self.distance <= 0 or not 1.0 <= self.fov <= 120.0:
            raise InputError(f"camera: distance must be > 0 mm and fov in 1..120 degrees, got "
                             f"{self.distance}, {self.fov}")
        y, p = math.radians(self.yaw), math.radians(self.pitch)
        eye_dir = np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])
        fwd = -eye_dir  # camera looks toward the target
        right = np.cross(fwd, [0.0, 1.0, 0.0])
        if np.linalg.norm(right) < 1e-6:
            raise InputError("camera.pitch: +-90 degrees leaves the camera's up direction undefined")
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        rot = np.stack([right, up, -fwd])
        pos = np.asarray(self.target, dtype=np.float64) + self.distance * eye_dir
        return np.concatenate([rot, (-rot @ pos)[:, None]], axis=1)


@dataclass(frozen=True)
class Lighting:
    """Lights in camera space (directions toward the light), intensities and colours (sRGB 0..1).

    Diffuse terms use wrap lighting, ``max(0, (n.l + wrap) / (1 + wrap))`` (``wrap`` > 0 softens the
    terminator the way light scattered under skin does); ``rim`` adds ``rim (1 - n.v)^2`` toward the
    silhouette (a back light) so that dark surfaces keep their outline against the background.
    """

    key_dir: tuple[float, float, float] = (-0.45, 0.55, 0.70)
    key: float = 0.85
    fill_dir: tuple[float, float, float] = (0.70, 0.05, 0.70)
    fill: float = 0.30
    ambient: float = 0.18
    specular: float = 0.10
    shininess: float = 24.0
    background: tuple[float, float, float] = (0.20, 0.22, 0.26)
    interior: tuple[float, float, float] = (0.10, 0.04, 0.04)
    wrap: float = 0.0
    rim: float = 0.0


HEAD_LIGHTING = Lighting(key_dir=(-0.4, 0.5, 0.77), key=0.68, fill_dir=(0.75, 0.05, 0.66), fill=0.34,
                         ambient=0.16, specular=0.14, shininess=20.0, wrap=0.3, rim=0.3,
                         background=(0.20, 0.22, 0.26), interior=(0.22, 0.07, 0.06))
"""The default lighting of the whole head: a soft three-point setup that keeps all 10 Monk tones legible."""


def random_lighting(rng: np.random.Generator, background: tuple[float, float, float] | None = None) -> Lighting:
    """A random but plausible light setup (for datasets): key from the upper front hemisphere at a
    random side, fill 0.1-0.5, ambient 0.12-0.3, warm to cool is left to the albedo."""
    az, el = rng.uniform(-70, 70), rng.uniform(-10, 60)
    a, e = math.radians(az), math.radians(el)
    key = (math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e))
    fa = math.radians(-az * rng.uniform(0.5, 1.2))
    bg = background if background is not None else tuple(float(x) for x in rng.uniform(0.05, 0.8, 3))
    return Lighting(key_dir=key, key=float(rng.uniform(0.7, 1.1)), fill_dir=(math.sin(fa), 0.1, math.cos(fa)),
                    fill=float(rng.uniform(0.1, 0.5)), ambient=float(rng.uniform(0.12, 0.3)),
                    specular=float(rng.uniform(0.04, 0.14)), shininess=float(rng.uniform(12, 30)),
                    wrap=float(rng.uniform(0.1, 0.4)), rim=float(rng.uniform(0.0, 0.5)), background=bg,
                    interior=HEAD_LIGHTING.interior)


@njit(cache=True, fastmath=True)
def _render_frame(verts, tris, albedo, spec_w, view, focal, res, light, bg, interior, lut, out,  # pragma: no cover
                  alpha, cull):
    nv = verts.shape[0]
    nt = tris.shape[0]
    normals = np.zeros((nv, 3), np.float32)
    for t in range(nt):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        ux, uy, uz = verts[b, 0] - verts[a, 0], verts[b, 1] - verts[a, 1], verts[b, 2] - verts[a, 2]
        vx, vy, vz = verts[c, 0] - verts[a, 0], verts[c, 1] - verts[a, 1], verts[c, 2] - verts[a, 2]
        nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        normals[a, 0] += nx
        normals[a, 1] += ny
        normals[a, 2] += nz
        normals[b, 0] += nx
        normals[b, 1] += ny
        normals[b, 2] += nz
        normals[c, 0] += nx
        normals[c, 1] += ny
        normals[c, 2] += nz
    sx = np.empty(nv, np.float32)
    sy = np.empty(nv, np.float32)
    sz = np.empty(nv, np.float32)
    cam = np.empty((nv, 3), np.float32)  # camera-space position
    cn = np.empty((nv, 3), np.float32)  # camera-space unit normal
    half = 0.5 * res
    for i in range(nv):
        x, y, z = verts[i, 0], verts[i, 1], verts[i, 2]
        cx = view[0, 0] * x + view[0, 1] * y + view[0, 2] * z + view[0, 3]
        cy = view[1, 0] * x + view[1, 1] * y + view[1, 2] * z + view[1, 3]
        cz = view[2, 0] * x + view[2, 1] * y + view[2, 2] * z + view[2, 3]
        cam[i, 0], cam[i, 1], cam[i, 2] = cx, cy, cz
        depth = -cz
        sz[i] = depth
        if depth > 1e-3:
            sx[i] = half + focal * cx / depth
            sy[i] = half - focal * cy / depth
        else:
            sx[i] = 0.0
            sy[i] = 0.0
        n0, n1, n2 = normals[i, 0], normals[i, 1], normals[i, 2]
        mx = view[0, 0] * n0 + view[0, 1] * n1 + view[0, 2] * n2
        my = view[1, 0] * n0 + view[1, 1] * n1 + view[1, 2] * n2
        mz = view[2, 0] * n0 + view[2, 1] * n1 + view[2, 2] * n2
        ln = math.sqrt(mx * mx + my * my + mz * mz) + 1e-12
        cn[i, 0], cn[i, 1], cn[i, 2] = mx / ln, my / ln, mz / ln
    # pass 1: visibility (triangle id and barycentrics per pixel)
    zbuf = np.full((res, res), np.inf, np.float32)
    tid = np.full((res, res), -1, np.int32)
    bw0 = np.empty((res, res), np.float32)
    bw1 = np.empty((res, res), np.float32)
    for t in range(nt):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        if sz[a] <= 1e-3 or sz[b] <= 1e-3 or sz[c] <= 1e-3:
            continue
        x0, y0, x1, y1, x2, y2 = sx[a], sy[a], sx[b], sy[b], sx[c], sy[c]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-9 or (cull and area > 0.0):
            continue
        xmin = max(int(math.floor(min(x0, x1, x2))), 0)
        xmax = min(int(math.ceil(max(x0, x1, x2))), res - 1)
        ymin = max(int(math.floor(min(y0, y1, y2))), 0)
        ymax = min(int(math.ceil(max(y0, y1, y2))), res - 1)
        if xmin > xmax or ymin > ymax:
            continue
        inv = 1.0 / area
        for py in range(ymin, ymax + 1):
            fy = py + 0.5
            for px in range(xmin, xmax + 1):
                fx = px + 0.5
                w0 = ((x1 - fx) * (y2 - fy) - (x2 - fx) * (y1 - fy)) * inv
                w1 = ((x2 - fx) * (y0 - fy) - (x0 - fx) * (y2 - fy)) * inv
                w2 = 1.0 - w0 - w1
                if w0 < 0.0 or w1 < 0.0 or w2 < 0.0:
                    continue
                z = w0 * sz[a] + w1 * sz[b] + w2 * sz[c]
                if z >= zbuf[py, px]:
                    continue
                zbuf[py, px] = z
                tid[py, px] = t if area < 0.0 else -2 - t  # counter-clockwise in the head frame = front
                bw0[py, px] = w0
                bw1[py, px] = w1
    # pass 2: shade each visible pixel once (per-pixel normals, wrap diffuse, Blinn-Phong, rim)
    wrap = light[11]
    ss = res // out.shape[0]
    scale = 1.0 / (ss * ss)
    nl = lut.shape[0] - 1
    acc = np.zeros(3, np.float32)
    for oy in range(out.shape[0]):
        for ox in range(out.shape[1]):
            acc[0] = 0.0
            acc[1] = 0.0
            acc[2] = 0.0
            cover = 0
            for dy in range(ss):
                for dx in range(ss):
                    py, px = oy * ss + dy, ox * ss + dx
                    t = tid[py, px]
                    if t == -1:
                        for ch in range(3):
                            acc[ch] += bg[ch]
                        continue
                    cover += 1
                    if t < -1:
                        for ch in range(3):
                            acc[ch] += interior[ch]
                        continue
                    a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
                    w0, w1 = bw0[py, px], bw1[py, px]
                    w2 = 1.0 - w0 - w1
                    mx = w0 * cn[a, 0] + w1 * cn[b, 0] + w2 * cn[c, 0]
                    my = w0 * cn[a, 1] + w1 * cn[b, 1] + w2 * cn[c, 1]
                    mz = w0 * cn[a, 2] + w1 * cn[b, 2] + w2 * cn[c, 2]
                    ln = math.sqrt(mx * mx + my * my + mz * mz) + 1e-12
                    mx, my, mz = mx / ln, my / ln, mz / ln
                    px_ = w0 * cam[a, 0] + w1 * cam[b, 0] + w2 * cam[c, 0]
                    py_ = w0 * cam[a, 1] + w1 * cam[b, 1] + w2 * cam[c, 1]
                    pz_ = w0 * cam[a, 2] + w1 * cam[b, 2] + w2 * cam[c, 2]
                    vl = math.sqrt(px_ * px_ + py_ * py_ + pz_ * pz_) + 1e-12
                    vx, vy, vz = -px_ / vl, -py_ / vl, -pz_ / vl  # toward the camera
                    ndk = mx * light[0] + my * light[1] + mz * light[2]
                    dk = max(0.0, (ndk + wrap) / (1.0 + wrap))
                    df = max(0.0, (mx * light[4] + my * light[5] + mz * light[6] + wrap) / (1.0 + wrap))
                    hx, hy, hz = light[0] + vx, light[1] + vy, light[2] + vz
                    hl = math.sqrt(hx * hx + hy * hy + hz * hz) + 1e-12
                    nh = max(0.0, (mx * hx + my * hy + mz * hz) / hl)
                    sw = w0 * spec_w[a] + w1 * spec_w[b] + w2 * spec_w[c]
                    spec = 0.0
                    if ndk > 0.0 and nh > 0.0:
                        spec = sw * light[9] * math.exp(light[10] * math.log(nh))
                    nv_ = max(0.0, mx * vx + my * vy + mz * vz)
                    rim = light[12] * (1.0 - nv_) * (1.0 - nv_)
                    lit = light[8] + light[3] * dk + light[7] * df
                    for ch in range(3):
                        alb = w0 * albedo[a, ch] + w1 * albedo[b, ch] + w2 * albedo[c, ch]
                        acc[ch] += alb * lit + spec + rim * (0.35 + alb)
            alpha[oy, ox] = cover * scale
            for ch in range(3):
                v = min(max(acc[ch] * scale, 0.0), 1.0)
                out[oy, ox, ch] = lut[int(v * nl + 0.5)]


@njit(cache=True, parallel=True)
def _render_batch(verts, tris, albedo, spec_w, views, focal, res, light, bg, interior, lut, out,  # pragma: no cover
                  alpha, cull):
    per_frame_colors = albedo.shape[0] > 1
    for f in prange(verts.shape[0]):
        col = albedo[f] if per_frame_colors else albedo[0]
        _render_frame(verts[f], tris, col, spec_w, views[f], focal, res, light, bg, interior, lut, out[f], alpha[f],
                      cull)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return srgb_to_linear(np.clip(np.asarray(c, np.float32), 0.0, 1.0))


_LUT = np.clip(np.round(255.0 * linear_to_srgb(np.linspace(0, 1, 4096))), 0, 255).astype(np.uint8)


def _unit(v: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(v, np.float64)
    if a.shape != (3,) or not np.all(np.isfinite(a)) or np.linalg.norm(a) == 0:
        raise InputError(f"lighting.{name}: expected a non-zero 3-vector, got {v!r}")
    return a / np.linalg.norm(a)


def _rgb(v: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(v, np.float32)
    if a.shape != (3,) or not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
        raise InputError(f"{name}: expected an RGB triple in 0..1, got {v!r}")
    return a


def render(
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray,
    *,
    size: int = 256,
    camera: Camera | Sequence[Camera] = Camera(),
    lighting: Lighting = Lighting(),
    supersample: int = 1,
    specular: np.ndarray | None = None,
    return_alpha: bool = False,
    linear_colors: bool = False,
    cull_back: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Rasterize a batch of meshes that share one topology.

    vertices ``[F, V, 3]`` (or ``[V, 3]``) in mm; triangles ``[T, 3]`` int, counter-clockwise seen from
    the front; colors ``[V, 3]`` or ``[F, V, 3]`` sRGB albedo in 0..1; ``size`` pixels (square, 16..2048);
    ``camera`` one :class:`Camera` or one per frame; ``specular`` ``[V]`` per-vertex highlight strength
    (default 1); ``linear_colors``: ``colors`` are already linear-light albedo (skips the sRGB decoding);
    ``cull_back``: skip triangles seen from behind instead of drawing them in the interior colour (for
    closed meshes such as the head, about half the triangles, at the price of seeing through an opening
    such as the neck's from below).
    Returns uint8 ``[F, size, size, 3]`` (and, with ``return_alpha``, the covered fraction of
    each pixel, float32 ``[F, size, size]``, for compositing over a background image).
    """
    v = np.asarray(vertices)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[2] != 3 or v.shape[1] == 0:
        raise InputError(f"vertices: expected [frames, V, 3] or [V, 3], got shape {np.shape(vertices)}")
    if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
        raise InputError("vertices: expected finite numbers (found NaN/inf or a non-numeric dtype)")
    n_frames, n_v = v.shape[0], v.shape[1]
    t = np.asarray(triangles)
    if t.ndim != 2 or t.shape[1] != 3 or not np.issubdtype(t.dtype, np.integer):
        raise InputError(f"triangles: expected an integer array [T, 3], got {t.dtype} {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= n_v):
        raise InputError(f"triangles: indices must lie in 0..{n_v - 1}, found {t.min()}..{t.max()}")
    c = np.asarray(colors, dtype=np.float32)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] != (n_v, 3) or c.shape[0] not in (1, n_frames):
        raise InputError(f"colors: expected [{n_v}, 3] or [{n_frames}, {n_v}, 3], got {np.shape(colors)}")
    if not (c.min() >= 0 and c.max() <= 1):  # False for NaN too
        raise InputError("colors: expected finite sRGB values in 0..1")
    if not isinstance(size, int | np.integer) or not 16 <= size <= 2048:
        raise InputError(f"size: expected an integer number of pixels in 16..2048, got {size!r}")
    if not isinstance(supersample, int | np.integer) or not 1 <= supersample <= 4:
        raise InputError(f"supersample: expected an integer 1..4, got {supersample!r}")
    cams = [camera] * n_frames if isinstance(camera, Camera) else list(camera)
    if len(cams) != n_frames or not all(isinstance(k, Camera) for k in cams):
        raise InputError(f"camera: expected one Camera or a sequence of {n_frames} Cameras")
    if len({k.fov for k in cams}) > 1:
        raise InputError("camera: all cameras of one call must share a field of view")
    views = np.stack([k.view() for k in cams]).astype(np.float32)
    res = int(size) * int(supersample)
    focal = np.float32(0.5 * res / math.tan(math.radians(cams[0].fov) / 2))
    L = lighting
    sw = np.ones(n_v, np.float32) if specular is None else np.asarray(specular, np.float32)
    if sw.shape != (n_v,) or not np.all(np.isfinite(sw)) or sw.min() < 0:
        raise InputError(f"specular: expected [{n_v}] finite values >= 0, got shape {np.shape(specular)}")
    for name in ("key", "fill", "ambient", "specular", "shininess", "wrap", "rim"):
        val = getattr(L, name)
        if not math.isfinite(val) or val < 0:
            raise InputError(f"lighting.{name}: expected a finite number >= 0, got {val!r}")
    light = np.concatenate([_unit(L.key_dir, "key_dir"), [L.key], _unit(L.fill_dir, "fill_dir"),
                            [L.fill, L.ambient, L.specular, L.shininess, L.wrap, L.rim]]).astype(np.float32)
    bg = _srgb_to_linear(_rgb(L.background, "lighting.background"))
    interior = _srgb_to_linear(_rgb(L.interior, "lighting.interior"))
    out = np.empty((n_frames, int(size), int(size), 3), np.uint8)
    alpha = np.empty((n_frames, int(size), int(size)), np.float32)
    _render_batch(np.ascontiguousarray(v, dtype=np.float32), np.ascontiguousarray(t, dtype=np.int32),
                  np.ascontiguousarray(c if linear_colors else _srgb_to_linear(c)), sw, views, focal, res, light,
                  bg, interior, _LUT, out,
                  alpha, bool(cull_back))
    return (out, alpha) if return_alpha else out


def set_threads(n: int) -> None:
    """Set the number of Numba threads the renderer uses (1..numba.config.NUMBA_NUM_THREADS)."""
    if not 1 <= int(n) <= numba.config.NUMBA_NUM_THREADS:
        raise InputError(f"threads: expected 1..{numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(int(n))
