"""Reading pain from faces: MediaPipe Face Landmarker's models (run with ai-edge-litert) -> head pose,
52 blendshapes, FACS AU intensities (calibrated on painface-rendered faces) and PSPI, as pandas tables.

>>> from painface.analyze import Detector
>>> table = Detector().detect(["photo.jpg", "clip.mp4"])  # doctest: +SKIP

See docs/analyze.md.
"""

from painface.analyze.aus import DETECTED_AUS, PSPI_AUS, Calibration, uncalibrated_aus
from painface.analyze.detector import Detector, make_table, write_table

__all__ = ["DETECTED_AUS", "PSPI_AUS", "Calibration", "Detector", "make_table", "uncalibrated_aus", "write_table"]
