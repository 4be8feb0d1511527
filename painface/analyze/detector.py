"""The :class:`Detector`: faces in, a pandas table of head pose, blendshapes, AU intensities and PSPI out.

One row per face per frame (``max_faces`` faces at most, best first). Columns, in order:

``file, frame, time`` (s; 0 for images), ``face`` (index in the frame), ``face_detected`` (bool),
``error`` ("" when fine), ``width, height`` (frame pixels), ``face_x, face_y, face_width,
face_height`` (detection box, pixels), ``face_score`` (detection 0..1), ``presence`` (landmark
model's face presence 0..1), ``pitch, yaw, roll`` (degrees, face-code signs), the 52 ARKit
blendshapes (0..1, ARKit order; ``tongueOut`` is NaN: the model has none), the AU intensities
(0..5) of :data:`~painface.analyze.aus.DETECTED_AUS`, ``AU45`` (blinks, videos only, see
:func:`split_blinks`), ``PSPI`` (0..16); with ``landmarks=True``
also ``x_0 .. x_477, y_0 .., z_0 ..`` (pixels). A frame without a face gives one row with
``face_detected`` False and NaN measurements; a file that cannot be read gives one such row with
``error`` set.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from painface.analyze import inputs as I
from painface.analyze.aus import DETECTED_AUS, SHIPPED_MAPS, Calibration, pspi_from_aus, shipped_map, uncalibrated_aus
from painface.analyze.blazeface import FaceDetector
from painface.analyze.landmarks import FaceReader, FaceReading, Roi, roi_from_detection
from painface.analyze.models import BLENDSHAPE_OUTPUTS
from painface.errors import InputError
from painface.face.code import ARKIT_NAMES

BASE_COLUMNS: tuple[str, ...] = (
    "file", "frame", "time", "face", "face_detected", "error", "width", "height", "face_x", "face_y",
    "face_width", "face_height", "face_score", "presence", "pitch", "yaw", "roll",
)  # fmt: skip
MEASURE_COLUMNS: tuple[str, ...] = (*ARKIT_NAMES, *DETECTED_AUS, "AU45", "PSPI")
BLINK_SECONDS = 0.5
"""In videos, eye closures (AU43 >= 2.5) shorter than this are blinks: moved to AU45, out of PSPI."""


def landmark_columns() -> list[str]:
    return [f"{a}_{i}" for a in "xyz" for i in range(478)]


def roi_from_landmarks(lm: np.ndarray) -> Roi:
    """A tracking ROI from the previous frame's landmarks (eye corners 33 -> 263 give the angle)."""
    (x0, y0), (x1, y1) = lm[33, :2], lm[263, :2]
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    return Roi(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, 1.5 * float(max(hi - lo)),
               math.atan2(y1 - y0, x1 - x0))


class Detector:
    """Reads faces: BlazeFace detection, 478 landmarks, 52 blendshapes, head pose, AUs and PSPI.

    ``calibration``: the AU map (:mod:`painface.analyze.aus`): "offset" (the default: region
    blendshape less its resting level on rendered neutral faces), "regression" (fitted on all
    blendshapes of rendered faces; best on painface's own renders), "uncalibrated" (blendshape x 5),
    a path to a calibration JSON, or a :class:`Calibration`; None means "uncalibrated".
    ``threads``: interpreter threads per model. ``min_score``: detection threshold. ``max_faces``:
    faces per frame. ``min_presence``: landmark-model face presence below which a face is dropped.
    """

    def __init__(self, *, calibration: Any = "offset", threads: int = 1, min_score: float = 0.5,
                 max_faces: int = 1, min_presence: float = 0.5) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise InputError(f"threads: expected an integer >= 1, got {threads!r}")
        if not 0.0 < float(min_score) < 1.0 or not 0.0 <= float(min_presence) < 1.0:
            raise InputError(f"min_score / min_presence: expected values in 0..1, got {min_score}, {min_presence}")
        if not isinstance(max_faces, int) or max_faces < 1:
            raise InputError(f"max_faces: expected an integer >= 1, got {max_faces!r}")
        if isinstance(calibration, Calibration):
            self.calibration: Calibration | None = calibration
        elif isinstance(calibration, str) and calibration in SHIPPED_MAPS:
            self.calibration = shipped_map(calibration)
        elif calibration is None or calibration == "uncalibrated":
            self.calibration = None
        else:
            self.calibration = Calibration.load(calibration)
        self.face_detector = FaceDetector(threads, float(min_score), int(max_faces))
        self.reader = FaceReader(threads)
        self.min_presence = float(min_presence)
        self.blink_seconds = BLINK_SECONDS
        self.map_name = (calibration if isinstance(calibration, str) else
                         "uncalibrated" if calibration is None else "custom")

    # ---------------------------------------------------------------------------------- one frame
    def read_faces(self, image: Image.Image, previous: list[np.ndarray] | None = None) -> list[tuple[Any, FaceReading]]:
        """Detections (or tracked ROIs) and readings of the faces in one RGB image, best first."""
        dets = self.face_detector(image)
        rois: list[tuple[Any, Roi]] = [(d, roi_from_detection(d)) for d in dets]
        if not rois and previous:
            rois = [(None, roi_from_landmarks(lm)) for lm in previous]
        out = []
        for det, roi in rois:
            reading = self.reader(image, roi)
            if reading.presence >= self.min_presence:
                out.append((det, reading))
        return out

    def aus(self, blendshapes: np.ndarray) -> dict[str, np.ndarray]:
        """AU intensities ``{AU: [...]}`` from ``[..., 52]`` scores with this detector's map."""
        return self.calibration(blendshapes) if self.calibration is not None else uncalibrated_aus(blendshapes)

    def _rows(self, name: str, index: int, time: float, image: Image.Image, scale: float,
              found: list[tuple[Any, FaceReading]], landmarks: bool) -> list[dict[str, Any]]:
        w, h = image.size
        base = {"file": name, "frame": index, "time": time, "width": round(w * scale), "height": round(h * scale)}
        if not found:
            return [{**base, "face": 0, "face_detected": False, "error": ""}]
        rows = []
        for k, (det, r) in enumerate(found):
            lm = r.landmarks.astype(np.float64) * scale
            box = np.asarray(det.box) * scale if det is not None else np.r_[lm[:, :2].min(0), lm[:, :2].max(0)]
            row = {**base, "face": k, "face_detected": True, "error": "",
                   "face_x": box[0], "face_y": box[1], "face_width": box[2] - box[0], "face_height": box[3] - box[1],
                   "face_score": det.score if det is not None else np.nan, "presence": r.presence,
                   "pitch": r.pose[0], "yaw": r.pose[1], "roll": r.pose[2]}
            scores = dict(zip(BLENDSHAPE_OUTPUTS, r.blendshapes.astype(float), strict=True))
            row.update({n: scores.get(n, np.nan) for n in ARKIT_NAMES})
            aus = self.aus(r.blendshapes)
            row.update({au: float(v) for au, v in aus.items()})
            row["PSPI"] = float(pspi_from_aus(aus))
            if landmarks:
                row.update(zip(landmark_columns(), lm.T.ravel(), strict=True))
            rows.append(row)
        return rows

    # ---------------------------------------------------------------------------------- many inputs
    def iter_rows(self, inputs: Any, *, landmarks: bool = False, every: int = 1, max_frames: int | None = None,
                  progress: bool = True, annotate: Any = None) -> Iterator[dict[str, Any]]:
        """Rows (dicts) for every face of every frame of ``inputs``; a bad source gives an error row.

        ``annotate(image, found, rows)``, if given, may update each frame's rows in place before they are
        yielded (``image``: the RGB frame the faces were read in; ``found``: :meth:`read_faces`' result,
        one entry per face row): how another model (painface.assess) fills the same table."""
        sources = I.expand(inputs)
        many = len(sources) > 1
        outer = tqdm(sources, desc="analyze", unit="file", disable=not (progress and many), leave=False)
        for src in outer:
            bar = None
            if progress and src.kind == "video":
                bar = tqdm(total=I.count_frames(src), desc=Path(src.name).name, unit="frame", leave=False)
            previous: list[np.ndarray] | None = None
            n = 0
            try:
                for index, time, image in I.frames(src, every, max_frames):
                    small, scale = I.limit_size(image)
                    found = self.read_faces(small, previous if src.kind == "video" else None)
                    previous = [r.landmarks for _, r in found] or None
                    rows = self._rows(src.name, index, time, small, scale, found, landmarks)
                    if annotate is not None and found:
                        annotate(small, found, rows)
                    yield from rows
                    n += 1
                    if bar is not None:
                        bar.update(every)
            except I.FrameError as e:
                yield {"file": src.name, "frame": n, "time": np.nan, "face": 0, "face_detected": False,
                       "error": str(e)}
            finally:
                if bar is not None:
                    bar.close()

    def detect(self, inputs: Any, *, landmarks: bool = False, every: int = 1, max_frames: int | None = None,
               progress: bool = True) -> pd.DataFrame:
        """The table (see the module docstring) for images, arrays, PIL images, folders and videos.

        ``every``: analyze every n-th video frame; ``max_frames``: stop a video after this many.
        """
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every: expected an integer >= 1, got {every!r}")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise InputError(f"max_frames: expected an integer >= 1, got {max_frames!r}")
        rows = list(self.iter_rows(inputs, landmarks=landmarks, every=every, max_frames=max_frames,
                                   progress=progress))
        df = split_blinks(make_table(rows, landmarks), self.blink_seconds)
        df.attrs["painface"] = {"au_map": self.map_name, "min_score": self.face_detector.min_score,
                                "min_presence": self.min_presence, "blink_seconds": self.blink_seconds,
                                "every": every, "models": "MediaPipe Face Landmarker (assets/NOTICE.txt)"}
        return df

    def detect_image(self, image: Any, **kw: Any) -> pd.DataFrame:
        """:meth:`detect` for one image (path, array or PIL image)."""
        return self.detect([image], **kw)

    def detect_video(self, path: str | Path, **kw: Any) -> pd.DataFrame:
        """:meth:`detect` for one video file."""
        return self.detect([Path(path)], **kw)


def make_table(rows: list[dict[str, Any]], landmarks: bool = False) -> pd.DataFrame:
    """Rows -> a DataFrame with every column of the module docstring, in order, typed."""
    cols = [*BASE_COLUMNS, *MEASURE_COLUMNS, *(landmark_columns() if landmarks else [])]
    df = pd.DataFrame.from_records(rows, columns=cols)
    for c in ("frame", "face"):
        df[c] = df[c].astype("int64")
    df["face_detected"] = df["face_detected"].astype(bool)
    df["error"] = df["error"].fillna("").astype(str)
    df["file"] = df["file"].astype(str)
    numeric = [c for c in cols if c not in ("file", "frame", "face", "face_detected", "error")]
    df[numeric] = df[numeric].astype("float64")
    return df


def split_blinks(df: pd.DataFrame, max_seconds: float = BLINK_SECONDS) -> pd.DataFrame:
    """Tell blinks from eyes held closed in videos: per file and face, a run of frames with AU43 >= 2.5
    lasting less than ``max_seconds`` (from its first frame to the frame after its last) is a blink;
    its AU43 moves to ``AU45`` and PSPI is recomputed without it. Other video frames get AU45 0; single
    images keep AU45 NaN (one frame cannot tell a blink from closed eyes). Returns ``df`` changed."""
    from painface.face.code import AU43_CLOSED_THRESHOLD

    for _, g in df[df["face_detected"]].groupby(["file", "face"], sort=False):
        if g["frame"].nunique() < 2 or not g["time"].notna().all():
            continue
        g = g.sort_values("frame")
        df.loc[g.index, "AU45"] = 0.0
        closed = (g["AU43"] >= AU43_CLOSED_THRESHOLD).to_numpy()
        t = g["time"].to_numpy(float)
        step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
        start = None
        for k in range(len(closed) + 1):
            if k < len(closed) and closed[k]:
                start = k if start is None else start
                continue
            if start is not None and k < len(closed) and t[k - 1] + step - t[start] < max_seconds:
                idx = g.index[start:k]
                df.loc[idx, "AU45"] = df.loc[idx, "AU43"]
                df.loc[idx, "AU43"] = 0.0
                aus = {au: df.loc[idx, au].to_numpy(float) for au in DETECTED_AUS}
                df.loc[idx, "PSPI"] = pspi_from_aus(aus)
            start = None
    return df


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the table atomically as ``.csv`` or ``.parquet`` (parquet needs pyarrow)."""
    from painface.io import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = df.to_csv(index=False).encode()
    elif suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(f"{path}: writing .parquet needs pyarrow (pip install pyarrow, or "
                             "pip install 'painface[parquet]'); or write .csv") from None
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        raise InputError(f"{path}: expected a .csv or .parquet file name")
    atomic_write_bytes(path, lambda fh: fh.write(data))
    return path
