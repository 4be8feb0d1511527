import numpy as np
import pytest

from painface.errors import InputError
from painface.face import code
from painface.face.code import ARKIT_NAMES, AU_NAMES, FEATURE_NAMES, FLAME_NAMES


def face_with(**aus: float) -> np.ndarray:
    f = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    for k, v in aus.items():
        f[0, FEATURE_NAMES.index(k)] = v
    return f


def test_feature_set_holds_the_required_aus_and_pose():
    required = [
        "AU1",
        "AU2",
        "AU4",
        "AU5",
        "AU6",
        "AU7",
        "AU9",
        "AU10",
        "AU12",
        "AU15",
        "AU17",
        "AU20",
        "AU25",
        "AU26",
        "AU27",
        "AU43",
        "AU45",
    ]
    assert list(AU_NAMES) == required
    assert FEATURE_NAMES[-3:] == ("head_pitch", "head_yaw", "head_roll")
    assert len(FLAME_NAMES) == 103 and FLAME_NAMES[-1] == "jaw2"


def test_pspi_by_hand():
    f = face_with(AU4=2, AU6=1, AU7=3, AU9=0.5, AU10=2, AU43=3, AU45=5, AU12=4)
    # 2 + max(1, 3) + max(0.5, 2) + 1 (eyes closed past 2.5); blinks and AU12 never count
    assert code.pspi(f)[0] == pytest.approx(8.0)
    assert code.pspi(f, include_au43=False)[0] == pytest.approx(7.0)
    assert code.pspi(face_with(AU43=2.4))[0] == 0.0
    assert code.pspi(face_with(AU43=2.5))[0] == 1.0
    full = face_with(**{a: 5 for a in AU_NAMES})
    assert code.pspi(full)[0] == 16.0 and code.pspi(full, include_au43=False)[0] == 15.0


def test_pspi_works_on_batches_and_refuses_flame():
    f = np.zeros((3, 4, len(FEATURE_NAMES)), dtype=np.float32)
    f[1, 2, FEATURE_NAMES.index("AU4")] = 3
    p = code.pspi(f)
    assert p.shape == (3, 4) and p[1, 2] == 3 and p.sum() == 3
    with pytest.raises(InputError, match="FACS"):
        code.pspi(np.zeros((2, 103)), FLAME_NAMES)


def test_check_face_rejects_bad_arrays():
    good = np.zeros((4, 20), dtype=np.float32)
    assert code.check_face(good, FEATURE_NAMES).dtype == np.float32
    bad_nan = good.copy()
    bad_nan[2, 5] = np.nan
    with pytest.raises(InputError, match="frame 2, feature 'AU7'"):
        code.check_face(bad_nan, FEATURE_NAMES)
    with pytest.raises(InputError, match="0..5"):
        code.check_face(face_with(AU4=6.0), FEATURE_NAMES)
    with pytest.raises(InputError, match="2-D"):
        code.check_face(np.zeros(20), FEATURE_NAMES)
    with pytest.raises(InputError, match="float"):
        code.check_face(np.zeros((2, 20), dtype=np.int64), FEATURE_NAMES)
    with pytest.raises(InputError, match="columns"):
        code.check_face(np.zeros((2, 19), dtype=np.float32), FEATURE_NAMES)
    with pytest.raises(InputError, match="unknown feature"):
        code.feature_space(["AU4", "smile"])
    # pose is free: a 30 degree head pitch is fine
    assert code.check_face(face_with(head_pitch=30.0), FEATURE_NAMES)[0, -3] == 30.0


def test_arkit_mapping():
    assert len(ARKIT_NAMES) == 52 and len(set(ARKIT_NAMES)) == 52
    w = code.to_arkit(face_with(AU4=5, AU26=2.5, AU43=5, AU45=2, AU27=0))
    assert w.shape == (1, 52)
    assert w[0, ARKIT_NAMES.index("browDownLeft")] == pytest.approx(1.0)
    assert w[0, ARKIT_NAMES.index("browDownRight")] == pytest.approx(1.0)
    assert w[0, ARKIT_NAMES.index("jawOpen")] == pytest.approx(0.3)  # 2.5 / 5 x 0.6
    assert w[0, ARKIT_NAMES.index("eyeBlinkLeft")] == pytest.approx(1.0)  # the larger of AU43, AU45
    assert w[0, ARKIT_NAMES.index("mouthSmileLeft")] == 0.0
    # out-of-range intensities are clipped to 0..5 before mapping, weights stay in 0..1
    loud = code.to_arkit(face_with(AU27=9.0))
    assert loud[0, ARKIT_NAMES.index("jawOpen")] == pytest.approx(1.0)
    assert loud.max() <= 1.0 and loud.min() >= 0.0
    for au, targets in code.ARKIT_MAP.items():
        assert au in AU_NAMES and all(t in ARKIT_NAMES for t, _ in targets)
    assert set(code.ARKIT_MAP) == set(AU_NAMES)


def test_emotion_index():
    assert code.emotion_index("neutral") == code.EMOTIONS.index("Neutral")
    with pytest.raises(InputError, match="unknown name 'Joy'"):
        code.emotion_index("Joy")
