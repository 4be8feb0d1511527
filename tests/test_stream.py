"""The live engine: order and count of frames, batch independence, per-patient settings, the clocked
mode, self-measurement, and clear errors for bad pushes and settings."""

import math
import time
import types
import warnings

import numpy as np
import pytest
import torch
from model_helpers import randomized

from painface.errors import InputError
from painface.express import ExtrapolationWarning, PainDiffusion
from painface.face.code import FEATURE_NAMES, neutral_face
from painface.model.edm import Denoiser
from painface.model.sampling import RollingSampler
from painface.model.unet import UNetConfig
from painface.stream import LIVE_DEFAULTS, Chunk, ReactionMeter, StreamEngine

SMALL = dict(horizon=8, window=16, steps=3)


def tiny_model(seed: int = 0, memory: tuple[float, ...] = ()) -> PainDiffusion:
    """A randomized tiny PainDiffusion in FACS space (20 features, 25 fps), no training needed."""
    net = randomized(UNetConfig(feature_dim=len(FEATURE_NAMES), channels=16, cond_dim=16, heads=2, noise_dim=8,
                                stimulus_history=8, stimulus_memory=memory), seed)
    std = np.full(len(FEATURE_NAMES), 0.5, np.float32)
    info = {"normalizer": {"feature_names": list(FEATURE_NAMES), "mean": [0.5] * len(FEATURE_NAMES),
                           "std": std.tolist()},
            "data_scale": 0.5, "corpus": {"fps": 25.0}}
    return PainDiffusion(Denoiser(net), info)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def run_clocked(eng: StreamEngine, pid: int, got: list[Chunk], frames: int) -> None:
    """Start the clock, push 0.7 for ``pid``, wait until ``got`` (its on_frames list) holds ``frames`` frames
    (60 s at most), stop."""
    eng.start()
    try:
        eng.push(pid, 0.7)
        deadline = time.monotonic() + 60
        while sum(len(c) for c in got) < frames and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        eng.stop()


@pytest.fixture
def clock(monkeypatch):
    """A fake monotonic clock for the engine, stopped at 1000 s: where a push lands does not depend on the
    machine's speed."""
    import painface.stream as stream_module

    monkeypatch.setattr(stream_module, "time", types.SimpleNamespace(monotonic=lambda: 1000.0,
                                                                      perf_counter=time.perf_counter))
    return 1000.0


def run(engine, pid_stims, windows):
    for pid, stim in pid_stims.items():
        engine.push(pid, stim)
    for _ in range(windows):
        engine.step()
    return {pid: engine.pull(pid) for pid in pid_stims}


def test_frames_come_in_order_at_the_right_count(model):
    eng = StreamEngine(model, **SMALL)
    a, b = eng.add_patient(seed=1), eng.add_patient(seed=2)
    starts = []
    for k in range(4):
        eng.push(a, np.full(5, 0.2 * k))
        eng.step()
        chunk = eng.pull(a)
        starts.append(chunk.start)
        assert len(chunk) == 8 and chunk.face.shape == (8, 20) and chunk.pspi.shape == (8,)
        assert np.all(chunk.face[:, :17] >= 0) and np.all(chunk.face[:, :17] <= 5)
    assert starts == [0, 8, 16, 24]
    assert eng.pull(a) is None
    both = eng.pull(b)  # never pulled: four windows in one chunk, in order
    assert both.start == 0 and len(both) == 32
    # 5 samples pushed per 8-frame window: the rest of each window holds the last value
    eng2 = StreamEngine(model, **SMALL)
    p = eng2.add_patient()
    eng2.push(p, [0.1, 0.2, 0.3])
    eng2.step()
    np.testing.assert_allclose(eng2.pull(p).stimulus, [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], atol=1e-6)


def test_one_patient_matches_the_rolling_sampler(model):
    """With the stimulus pushed ahead the engine is offline generation: RollingSampler, same seed."""
    stim = np.clip(np.linspace(-0.5, 1.2, 24), 0, 1).astype(np.float32)
    eng = StreamEngine(model, **SMALL)
    pid = eng.add_patient(expressiveness=2.0, emotion="Sadness", guidance=(0.5, 1.0, 2.0), seed=7)
    got = run(eng, {pid: stim}, 3)[pid].face
    cfg = model.sampler_config(**SMALL, smooth=LIVE_DEFAULTS["smooth"], guidance=(0.5, 1.0, 2.0))
    ref = RollingSampler(model.denoiser, 2.0, "Sadness", neutral=model.encode(neutral_face(1)[0]), config=cfg,
                         batch=1, generator=torch.Generator().manual_seed(7))
    want = np.concatenate([model.decode(ref.step(stim[None, i * 8:(i + 1) * 8]))[0] for i in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_engine_and_rolling_sampler_run_the_same_window(model):
    """Both call denoise_window: one patient's window from the engine is bit-for-bit RollingSampler.step."""
    stim = np.linspace(0, 1, 8).astype(np.float32)
    eng = StreamEngine(model, **SMALL)
    pid = eng.add_patient(expressiveness=0.7, emotion="Anger", guidance=(0.0, 1.5, 3.0), seed=11)
    eng.push(pid, stim)
    eng.step()
    ref = RollingSampler(model.denoiser, 0.7, "Anger", neutral=model.encode(neutral_face(1)[0]),
                         config=model.sampler_config(**SMALL, smooth=LIVE_DEFAULTS["smooth"], guidance=(0.0, 1.5, 3.0)),
                         batch=1,
                         generator=torch.Generator().manual_seed(11))
    assert np.array_equal(eng.pull(pid).face, model.decode(ref.step(stim[None]))[0])


def test_a_patient_is_the_same_alone_or_batched(model):
    stim = np.r_[np.zeros(8), np.full(16, 0.8)]
    alone = StreamEngine(model, **SMALL)
    p = alone.add_patient(expressiveness=1.5, emotion="Fear", seed=3)
    want = run(alone, {p: stim}, 3)[p].face
    crowd = StreamEngine(model, **SMALL)
    q1 = crowd.add_patient(expressiveness=4.0, emotion="Happiness", guidance=(0, 0, 0), seed=1)
    p2 = crowd.add_patient(expressiveness=1.5, emotion="Fear", seed=3)
    q2 = crowd.add_patient(expressiveness=0.0, emotion={"Anger": 1, "Sadness": 1}, guidance=(2, 0, 5), seed=5)
    got = run(crowd, {q1: np.ones(24), p2: stim, q2: np.linspace(0, 1, 24)}, 3)
    np.testing.assert_allclose(got[p2].face, want, atol=1e-4)
    assert not np.allclose(got[q1].face, want, atol=1e-2)  # the others really are different streams


def test_changing_one_patients_settings_leaves_the_other_alone(model):
    def session(change: bool):
        eng = StreamEngine(model, **SMALL)
        a, b = eng.add_patient(seed=1), eng.add_patient(seed=2)
        for w in range(3):
            eng.push(a, np.full(8, 0.5))
            eng.push(b, np.full(8, 0.5))
            if change and w == 1:
                eng.configure(b, expressiveness=6.0, emotion="Anger", guidance=(0.0, 3.0, 0.0))
            eng.step()
        return eng.pull(a).face, eng.pull(b).face, eng

    a0, b0, _ = session(False)
    a1, b1, eng = session(True)
    np.testing.assert_allclose(a1, a0, atol=1e-5)
    np.testing.assert_allclose(b1[:8], b0[:8], atol=1e-5)  # window 0 was before the change
    assert not np.allclose(b1[8:], b0[8:], atol=1e-3)  # from the next window on, b follows its settings
    s = eng.settings(eng.patients[1])
    assert s["expressiveness"] == 6.0 and s["emotion"]["Anger"] == 1.0 and s["guidance"] == [0.0, 3.0, 0.0]


def test_patients_join_and_leave(model):
    eng = StreamEngine(model, max_patients=2, **SMALL)
    a = eng.add_patient()
    eng.step()
    b = eng.add_patient()
    with pytest.raises(InputError, match="engine full"):
        eng.add_patient()
    eng.step()
    assert eng.pull(a).start == 0 and len(eng.pull(b)) == 8  # b joined at the next window
    eng.remove_patient(a)
    with pytest.raises(InputError, match="no such patient"):
        eng.push(a, 0.5)
    assert eng.add_patient() > b and eng.step() == 2
    assert eng.patients[0] == b


@pytest.mark.parametrize("bad, msg", [
    (float("nan"), "NaN"), ([0.1, float("inf")], "NaN or infinity"), ("0.5", "expected a number"),
    ([[0.1], [0.2]], "1-D"), (2.0, "out of range"), (-0.1, "out of range"), (True, "expected numbers"),
    ([0.1, "x"], "expected numbers"), (None, "expected a number"), ({"v": 1}, "expected a number"),
])
def test_bad_pushes_are_clear_errors(model, bad, msg):
    eng = StreamEngine(model, **SMALL)
    pid = eng.add_patient()
    with pytest.raises(InputError, match=msg):
        eng.push(pid, bad)
    eng.push(pid, [])  # nothing pushed is fine
    assert eng.step() == 1


@pytest.mark.parametrize("kw, msg", [
    (dict(expressiveness=20.0), "expressiveness"), (dict(expressiveness="high"), "expressiveness"),
    (dict(emotion="Joy"), "unknown emotion"), (dict(guidance=(1, 2)), "guidance"),
    (dict(guidance=(1, -1, 0)), "guidance"), (dict(guidance=(1, 1, float("nan"))), "guidance"),
    (dict(guidance="strong"), "guidance"), (dict(emotion=[0.5] * 8), "sum to 1"),
])
def test_bad_settings_are_clear_errors(model, kw, msg):
    eng = StreamEngine(model, **SMALL)
    with pytest.raises(InputError, match=msg):
        eng.add_patient(**kw)
    pid = eng.add_patient()
    with pytest.raises(InputError, match=msg):
        eng.configure(pid, **kw)
    with pytest.raises(InputError, match="horizon"):
        StreamEngine(model, horizon=7, window=16)


def test_reaction_meter_measures_from_the_step_to_pspi_departure():
    meter = ReactionMeter()
    ps0 = np.full(10, 0.5, np.float32)
    meter.frames(Chunk(0, np.zeros((10, 20)), np.zeros(10), ps0, 25.0, due0=100.0), 1.0)
    meter.watch(0.0, np.arange(12, 15), np.array([0.0, 0.9, 0.9]), wall=100.3)  # step at frame 13
    ps = np.r_[np.full(8, 0.6), np.full(2, 2.0)].astype(np.float32)  # frames 10..19; 18 departs (> 1.5)
    meter.frames(Chunk(10, np.zeros((10, 20)), np.zeros(10), ps, 25.0, due0=100.4), 1.0)
    assert meter.stream_latencies == [pytest.approx((18 - 13) / 25)]
    assert meter.latencies == [pytest.approx(100.4 + 8 / 25 - 100.3)]
    meter.watch(0.5, np.arange(3), np.array([0.9, 0.9, 0.9]), wall=0.0)  # not from rest: no step
    assert meter.step is None


def test_pipeline_latency_runs_to_the_first_frame_generated_with_the_step():
    """A window computed while the step was pushed (its frames hold the old value) does not count; the first
    frame at or after the step that carries it does, at its due time."""
    meter = ReactionMeter()
    meter.watch(0.0, np.array([13]), np.array([0.9]), wall=100.3)  # step at frame 13, pushed at 100.3
    meter.frames(Chunk(10, np.zeros((8, 20)), np.zeros(8), np.zeros(8, np.float32), 25.0, due0=100.35), 1.0)
    assert meter.pipeline == []  # generated before the step was known
    stim = np.r_[np.zeros(1), np.full(7, 0.9)]  # a redo from frame 12 (a whole token); the step shows at 13
    meter.frames(Chunk(12, np.zeros((8, 20)), stim, np.zeros(8, np.float32), 25.0, due0=100.51), 1.0)
    assert meter.pipeline == [pytest.approx(100.51 + 1 / 25 - 100.3)]
    meter.frames(Chunk(20, np.zeros((8, 20)), np.full(8, 0.9), np.zeros(8, np.float32), 25.0, due0=101.0), 1.0)
    assert len(meter.pipeline) == 1  # once per step


def test_step_mode_measures_itself(model):
    eng = StreamEngine(model, **SMALL)
    pid = eng.add_patient()
    eng.push(pid, np.r_[np.zeros(16), np.ones(32)])
    for _ in range(6):
        eng.step()
    s = eng.stats()
    assert s["windows"] == 6 and s["real_time_factor"] > 0 and s["window_ms"] > 0
    assert s["patients"] == 1 and s["horizon"] == 8 and s["reaction_s"] is None  # no clock in step mode


def test_clocked_mode_produces_frames_on_its_own(model):
    eng = StreamEngine(model, lead_s=0.1, threads=None, redo=False, **SMALL)  # one chunk per window
    got: list[Chunk] = []
    pid = eng.add_patient(on_frames=got.append)
    other = eng.add_patient()
    run_clocked(eng, pid, got, 24)
    assert eng.error is None and not eng.running
    assert [c.start for c in got[:3]] == [0, 8, 16]
    assert got[1].due(0) - got[0].due(0) == pytest.approx(8 / 25)
    assert got[1].stimulus[-1] == pytest.approx(0.7)  # the pushed level holds
    assert eng.pull(pid) is None and eng.pull(other).start == 0  # callbacks replace the queue
    with pytest.raises(InputError, match="already running"):
        eng.start()
        eng.start()
    eng.stop()


def test_expressiveness_above_the_trained_range_warns_when_set():
    recorded = tiny_model()
    recorded.info["corpus"]["expressiveness"] = {"min": 0.1, "max": 1.0, "subjects": 3}
    eng = StreamEngine(recorded, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pid = eng.add_patient(expressiveness=1.0)  # inside the range: silent
        eng.configure(pid, emotion="Fear")  # expressiveness untouched: silent
    with pytest.warns(ExtrapolationWarning, match="expressiveness 2 lies above"):
        eng.configure(pid, expressiveness=2.0)
    with pytest.warns(ExtrapolationWarning, match="expressiveness 3 lies above"):
        eng.add_patient(expressiveness=3.0)


def test_clocked_mode_hands_out_held_frames_in_order(model):
    eng = StreamEngine(model, lead_s=0.2, emit_ahead_s=0.08, threads=None, **SMALL)
    got: list[Chunk] = []
    pid = eng.add_patient(on_frames=got.append)
    run_clocked(eng, pid, got, 24)
    assert eng.error is None
    starts = [c.start for c in got]
    assert starts[0] == 0 and all(b == a + len(c) for a, b, c in zip(starts, starts[1:], got, strict=False))
    assert len(got) > 3  # handed out in pieces as they come due, not a window at a time
    assert got[-1].stimulus[-1] == pytest.approx(0.7)


def test_news_regenerates_the_held_frames_with_the_stimulus_that_came():
    """Clocked mode without the thread: a window is generated and held, then a sample for one of its frames
    differs from the value held over it: the redo regenerates the frames from there, continuing the stream
    (frames contiguous, context and stimulus memory as if the true stimulus had been known)."""
    from painface.stimulus import stimulus_memory

    taus = (10.0, 40.0)
    model = tiny_model(3, memory=taus)
    eng = StreamEngine(model, lead_s=30.0, emit_ahead_s=0.1, threads=None, **SMALL)
    pid = eng.add_patient(seed=5)
    p = eng._patients[pid]
    eng._t0 = time.monotonic()  # the clock runs; frames are due 30 s after their stimulus time
    eng.push(pid, 0.0)
    eng.step()  # frames 0..7, held
    assert len(p.held) == 1 and eng.pull(pid) is None
    eng.push(pid, 1.0)  # lands at the current clock frame (0 or 1): news for frames already generated
    news = p.redo_from
    assert news is not None and news < 8
    assert eng._redo_news(time.monotonic() + 100) == 1 and p.redo_from is None
    eng.push(pid, 1.0)  # the same value again: no news
    assert p.redo_from is None
    eng.step()
    eng._emit(0.0, ahead=math.inf)
    out = eng.pull(pid)
    assert out.start == 0 and len(out) == 16
    assert np.all(out.stimulus[news:] == 1.0) and np.all(out.stimulus[:news] == 0.0)
    # the memory carried on is that of the true stimulus, and the context is the last generated frames
    mem, state = stimulus_memory(out.stimulus.astype(np.float64), taus)
    assert np.allclose(p.memory, state, atol=1e-5)
    assert np.allclose(p.memory_context, mem[-eng.config.context:], atol=1e-5)
    assert torch.equal(p.context, p.window_x[-eng.config.context:])
    s = eng.stats()
    assert s["redos"] == 1 and s["redo_ms"] > 0


def test_a_redo_that_must_start_after_the_news_still_carries_it(model, clock):
    """Frames due before a redo could end are handed out first; the redo then starts after the news frame, and the
    frames it makes carry the news (the value in effect), not the old held value."""
    now = clock
    eng = StreamEngine(model, lead_s=0.15, emit_ahead_s=0.1, threads=None, **SMALL)
    pid = eng.add_patient()
    p = eng._patients[pid]
    eng._redos.append((0.2, 1))  # a redo is expected to take 0.2 s
    eng._t0 = now - 0.5 / eng.fps  # clock frame 0; frame k is due at now + (k - 0.5) / 25 + 0.15
    eng.step()
    eng.push(pid, 1.0)
    assert p.redo_from == 0
    # due within 0.2 + 0.1 s: frames 0..4 go out first; the redo covers the last whole token after them: 6, 7
    assert eng._redo_news(now + 100) == 1
    assert eng.pull(pid).start == 0 and [c.start for c in p.held] == [5, 6]
    eng._emit(0.0, ahead=math.inf)
    out = eng.pull(pid)
    assert out.start == 5 and out.stimulus.tolist() == [0.0, 1.0, 1.0]
    eng.push(pid, 1.0)
    assert p.redo_from is None  # no endless redos: what was redone carries the value


def test_redo_takes_as_many_patients_as_fit_before_the_next_window_earliest_news_first(model, clock):
    now = clock
    eng = StreamEngine(model, lead_s=30.0, threads=None, **SMALL)
    pids = [eng.add_patient(seed=i) for i in range(3)]
    eng._t0 = now - 3.5 / eng.fps  # clock frame 3
    eng.step()
    for pid, frame in zip(pids, (3, 1, 2), strict=True):  # news at frames 3, 1, 2
        eng.push(pid, [1.0] * (8 - frame))
        eng._patients[pid].redo_from = frame
    eng._redos.extend([(0.1, 1)] * 3)  # one patient: 0.1 s; each further one: 0.1 s (0.3 s per 3-patient window)
    eng._compute.clear()
    eng._compute.append((0.3, 3))
    assert eng._redo_estimate(1) == pytest.approx(0.1) and eng._redo_estimate(3) == pytest.approx(0.3)
    assert eng._redo_news(now + 0.25) == 2  # two fit
    redone = [pid for pid in pids if any(np.any(c.stimulus == 1.0) for c in eng._patients[pid].held)]
    assert redone == pids[1:]  # the earliest news (frames 1 and 2)
    assert all(eng._patients[pid].redo_from is None for pid in pids)  # the third waits for the next window


def test_redo_is_skipped_when_it_cannot_end_before_the_next_window(model):
    eng = StreamEngine(model, lead_s=30.0, threads=None, **SMALL)
    pid = eng.add_patient()
    eng._t0 = time.monotonic()
    eng.step()
    eng.push(pid, 1.0)
    assert eng._patients[pid].redo_from is not None
    assert eng._redo_news(time.monotonic() - 1.0) == 0  # the next window is due: it takes the news
    assert eng._patients[pid].redo_from is None and eng.stats()["redos"] == 0


def test_a_sample_pushed_while_a_window_computes_lands_on_its_frame(model, clock):
    """Clocked mode: a sample pushed during the compute of window 0 (frames 0..7) at clock frame 5 is late for
    that window; the next window (frames 8..15) is all the new value, not shifted by 5 frames."""
    now = clock
    eng = StreamEngine(model, lead_s=30.0, threads=None, redo=False, **SMALL)
    pid = eng.add_patient()
    eng._t0 = now - 5.5 / eng.fps
    real = eng._generate

    def generate_and_push(*a, **k):
        eng.push(pid, 1.0)
        assert eng._patients[pid].pending_before == [(5, 1.0)]  # late for this window: its own frame
        return real(*a, **k)

    eng._generate = generate_and_push
    eng.step()
    eng._generate = real
    eng.step()
    both = eng.pull(pid)
    assert both.start == 0 and len(both) == 16  # both windows (nothing held: redo off)
    assert np.all(both.stimulus[8:] == 1.0) and np.all(both.stimulus[:8] == 0.0)
