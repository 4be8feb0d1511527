"""`painface inspect`: exact summary numbers on a corpus with known responses in known trials."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from painface.data import inspect as insp
from painface.data.corpus import Corpus, SubjectData, make_meta
from painface.data.trials import pspi_histogram_counts, response_share_by_level, trial_responses
from painface.errors import InputError
from painface.face.code import FEATURE_NAMES, FLAME_NAMES

FPS = 25.0
FIRST, PERIOD, ABOVE = 100, 150, 100  # first trial start, trial period, frames above baseline per trial
LEVELS = (1, 2, 3, 4, 4, 3, 2, 1)
FRAMES = FIRST + PERIOD * len(LEVELS)
ONSET = [FIRST + k * PERIOD for k in range(len(LEVELS))]
# (subject, trial) -> PSPI bump amplitude during [onset + 20, onset + 60)
BUMPS = {(0, 3): 2.0, (0, 2): 1.0, (0, 1): 0.9, (1, 3): 1.5, (1, 4): 1.2, (1, 5): 0.5, (1, 0): 1.0}
PATTERNS = ("p1_eyes_brows_nose", "p2_mouth_eyes", "stoic", "stoic")


def subject_arrays(k: int, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pspi, level, trial, stimulus of fixture subject k."""
    pspi = np.zeros(frames, dtype=np.float32)
    level = np.zeros(frames, dtype=np.int8)
    trial = np.full(frames, -1, dtype=np.int16)
    stim = np.zeros(frames, dtype=np.float32)
    for j, (on, lv) in enumerate(zip(ONSET, LEVELS, strict=True)):
        level[on : on + ABOVE] = lv
        stim[on : on + ABOVE] = lv / 4
        trial[on:] = j
        if (k, j) in BUMPS:
            pspi[on + 20 : on + 60] = BUMPS[(k, j)]
    if k == 0:  # a raised PSPI before trial 4: its peak (3.5) is high but only 0.5 above its baseline (3)
        pspi[ONSET[4] - 40 : ONSET[4] + 60] = 3.0
        pspi[ONSET[4] + 20 : ONSET[4] + 60] = 3.5
    return pspi, level, trial, stim


def make_corpus() -> Corpus:
    infos, subs = [], {}
    for k in range(4):
        frames = FRAMES + (100 if k == 3 else 0)
        pspi, level, trial, stim = subject_arrays(k, frames)
        face = np.zeros((frames, len(FEATURE_NAMES)), dtype=np.float32)
        face[:, FEATURE_NAMES.index("AU4")] = np.minimum(pspi, 5.0)
        info = {
            "id": f"vs{k:03d}",
            "split": "val" if k == 3 else "train",
            "expressiveness": float(pspi.mean()),
            "emotion": ("Fear", "Neutral", "Neutral", "Sadness")[k],
            "pattern": PATTERNS[k],
            "sex": ("female", "male", "female", "male")[k],
        }
        infos.append(info)
        subs[info["id"]] = SubjectData(
            info=info,
            face=face,
            stimulus=stim,
            pspi=pspi,
            extras={"level": level, "trial": trial, "temperature": (32 + 18 * stim).astype(np.float32)},
        )
    meta = make_meta(fps=FPS, feature_names=FEATURE_NAMES, stimulus_units="normalized", subjects=infos)
    return Corpus(meta, subjects=subs)


# --- the trial rule ----------------------------------------------------------------------------
def test_trial_responses_of_one_subject():
    pspi, level, trial, _ = subject_arrays(0)
    tr = trial_responses(pspi, fps=FPS, trial=trial, level=level)
    assert [t.onset for t in tr] == ONSET and [t.level for t in tr] == list(LEVELS)
    assert [t.end for t in tr] == ONSET[1:] + [FRAMES]
    assert [t.visible for t in tr] == [False, False, True, True, False, False, False, False]
    assert tr[4].baseline == pytest.approx(3.0) and tr[4].peak == pytest.approx(3.5)
    assert tr[3].peak == pytest.approx(3.0)  # the raised stretch starts inside trial 3
    assert tr[2].rise == pytest.approx(1.0)  # exactly the threshold: visible
    # from level alone (no trial array): onsets where the level starts
    tr2 = trial_responses(pspi, fps=FPS, level=level)
    assert [t.onset for t in tr2] == ONSET and [t.visible for t in tr2] == [t.visible for t in tr]
    # the baseline is the mean of the 1 s (25 frames) before the onset
    ps = np.zeros(100, dtype=np.float32)
    ps[40:50] = 2.0
    ps[55:60] = 2.4
    one = trial_responses(ps, fps=FPS, trial=np.r_[np.full(50, -1), np.zeros(50)].astype(np.int16))
    assert one[0].baseline == pytest.approx(20 / 25) and one[0].peak == pytest.approx(2.4)
    assert one[0].visible  # 2.4 - 0.8 >= 1
    with pytest.raises(InputError, match="needs a per-frame 'trial' or 'level'"):
        trial_responses(ps, fps=FPS)
    with pytest.raises(InputError, match="has 99 frames, expected 100"):
        trial_responses(ps, fps=FPS, trial=np.zeros(99))


def test_pspi_histogram_bins():
    counts = pspi_histogram_counts(np.array([0, 0.4, 0.6, 2.5, 16.2, 20.0, -0.3]))
    expected = np.zeros(17, dtype=np.int64)
    expected[[0, 1, 3, 16]] = [3, 1, 1, 2]
    np.testing.assert_array_equal(counts, expected)
    assert response_share_by_level([]) == {"1": None, "2": None, "3": None, "4": None}


# --- the summary -------------------------------------------------------------------------------
def test_summary_exact_numbers():
    s = insp.summarize(make_corpus(), progress=False)
    assert s["subjects"] == {"total": 4, "train": 3, "val": 1, "test": 0}
    assert s["frames_per_subject"] == {"min": 1300.0, "median": 1300.0, "max": 1400.0}
    assert s["fps"] == 25.0 and s["feature_space"] == "facs" and s["stimulus_units"] == "normalized"
    assert s["stoic_share"] == 0.5
    assert s["pattern_counts"] == {"p1_eyes_brows_nose": 1, "p2_mouth_eyes": 1, "stoic": 2}
    assert s["trials"] == 32 and s["trials_by_level"] == {"1": 8, "2": 8, "3": 8, "4": 8}
    # L1: s1 t0 | L2: none | L3: s0 t2 | L4: s0 t3, s1 t3, s1 t4 (s0 t4 is high but not above its baseline)
    assert s["response_share_by_level"] == {"1": 0.125, "2": 0.0, "3": 0.125, "4": 0.375}
    # PSPI histogram: count the frames of each value by hand
    total = 3 * FRAMES + FRAMES + 100
    per_value = {0.9: 40, 1.0: 80, 1.2: 40, 0.5: 40, 1.5: 40, 2.0: 40, 3.0: 60, 3.5: 40}
    # s0: trial 3's bump (2.0) ends before the raised stretch (ONSET[4] - 40 = 810 > 510)
    bins = {0.9: 1, 1.0: 1, 1.2: 1, 0.5: 1, 1.5: 2, 2.0: 2, 3.0: 3, 3.5: 4}
    expected = np.zeros(17)
    for v, n in per_value.items():
        expected[bins[v]] += n
    expected[0] = total - sum(per_value.values())
    np.testing.assert_allclose(s["pspi_histogram"], expected / total)
    assert sum(s["pspi_histogram"]) == pytest.approx(1.0)
    json.dumps(s)  # JSON-able


def test_summary_of_one_subject_and_unknown_subject():
    s = insp.summarize(make_corpus(), subject="vs001", progress=False)
    sub = s["subject"]
    assert sub["id"] == "vs001" and sub["trials"] == 8 and sub["frames"] == FRAMES
    assert sub["response_share_by_level"] == {"1": 0.5, "2": 0.0, "3": 0.0, "4": 1.0}
    with pytest.raises(InputError, match="'nobody' is not in this corpus"):
        insp.summarize(make_corpus(), subject="nobody", progress=False)


def test_corpus_without_trials_and_patterns():
    corpus = make_corpus()
    for sid in corpus.ids():
        corpus.subject(sid).extras.clear()
        corpus.info(sid)["pattern"] = "unknown"
    s = insp.summarize(corpus, progress=False)
    assert s["trials"] == 0 and s["response_share_by_level"] == {"1": None, "2": None, "3": None, "4": None}
    assert s["stoic_share"] is None
    assert "stoic share       -" in insp.format_table(s)


# --- the command -------------------------------------------------------------------------------
def _run(argv: list[str]) -> int:
    from painface.commands import inspect as command

    parser = argparse.ArgumentParser()
    command.configure(parser)
    return command.run(parser.parse_args(argv))


def test_command_json_and_default_figure(tmp_path, capsys):
    root = make_corpus().save(tmp_path / "corpus")
    assert _run([str(root), "--json"]) == 0
    out = capsys.readouterr()
    s = json.loads(out.out)
    for key in ("subjects", "frames_per_subject", "fps", "stoic_share", "response_share_by_level", "pspi_histogram"):
        assert key in s
    assert s["response_share_by_level"] == {"1": 0.125, "2": 0.0, "3": 0.125, "4": 0.375}
    fig = root / "inspect_vs000.png"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"figure: {fig}" in out.err
    assert not list(root.glob(".*.part"))  # written atomically: no temporary left behind


def test_command_table_subject_and_figure_path(tmp_path, capsys):
    root = make_corpus().save(tmp_path / "corpus")
    fig = tmp_path / "figs" / "one.png"
    assert _run([str(root), "--subject", "vs002", "--figure", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "subjects          4 (3 train, 1 val)" in out
    assert "visible response  L1 0.12  L2 0.00  L3 0.12  L4 0.38" in out
    assert "subject vs002: split train, pattern stoic" in out
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert not (root / "inspect_vs002.png").exists()
    assert _run([str(root), "--no-figure"]) == 0
    assert not (root / "inspect_vs000.png").exists()


def test_command_on_flame_corpus(tmp_path, capsys):
    rng = np.random.default_rng(0)
    infos, subs = [], {}
    for k in range(2):
        pspi, level, trial, stim = subject_arrays(k)
        info = {
            "id": f"b{k}",
            "split": "train",
            "expressiveness": float(pspi.mean()),
            "emotion": "Neutral",
            "pattern": "unknown",
        }
        infos.append(info)
        subs[info["id"]] = SubjectData(
            info=info,
            face=rng.normal(size=(FRAMES, 103)).astype(np.float32),
            stimulus=stim,
            pspi=pspi,
            extras={"level": level},
        )
    corpus = Corpus(
        make_meta(fps=FPS, feature_names=FLAME_NAMES, stimulus_units="normalized", subjects=infos, source="biovid"),
        subjects=subs,
    )
    root = corpus.save(tmp_path / "flame")
    assert _run([str(root), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["feature_space"] == "flame" and s["source"] == "biovid" and s["stoic_share"] is None
    # trials from the level array alone: s0 visible in t2, t3; s1 in t0, t3, t4
    assert s["response_share_by_level"] == {"1": 0.25, "2": 0.0, "3": 0.25, "4": 0.75}
    assert (root / "inspect_b0.png").read_bytes()[:4] == b"\x89PNG"


def test_command_errors(tmp_path):
    with pytest.raises(InputError, match="corpus folder not found"):
        _run([str(tmp_path / "nowhere")])
    root = make_corpus().save(tmp_path / "c")
    with pytest.raises(InputError, match="'vs999' is not in this corpus"):
        _run([str(root), "--subject", "vs999"])


def test_figure_without_trials(tmp_path):
    corpus = make_corpus()
    corpus.subject("vs000").extras.clear()
    path = insp.plot_subject(corpus, "vs000", tmp_path / "f.png")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"


def test_through_the_painface_command(tmp_path, capsys):
    from painface.cli import main

    root = make_corpus().save(tmp_path / "c")
    assert main(["inspect", str(root), "--json", "--no-figure"]) == 0
    assert json.loads(capsys.readouterr().out)["stoic_share"] == 0.5
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "corpus folder not found" in capsys.readouterr().err
