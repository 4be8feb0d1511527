"""The real-time engine: stimulus samples in, face-code frames out, for several patients in one batch.

:class:`StreamEngine` runs PainDiffusion's rolling diffusion forcing ([PainDiffusion, §III-E/F]) live. Every
*window* it generates the next ``horizon`` frames of every patient in one batched, guided DPM-Solver++
pass, continuing from each patient's last ``window - horizon`` frames (the context). The stimulus of
the new frames is not known yet when they are generated: the latest sample is held over them, and the
context frames are paired with the stimulus that really came. In clocked mode the generated frames are held
and handed out as they come due; a sample that turns out different from the value held over frames already
generated (*news*) makes the engine generate those frames again, from the news on, before they are handed
out (``redo``): a stimulus change shows ``lead_s`` after it came, not at the next window.

(Over 400 lines on purpose: one class, the engine, with its per-patient state and the reports the server
sends; the input checks live in :mod:`painface.model.conditions` and the denoising in
:func:`painface.model.sampling.denoise_window`.)

Use:

* **step mode** (tests, offline): ``push(pid, samples)`` appends stimulus samples (normalized, 0 =
  baseline, 1 = tolerance, at the engine's fps) to the patient's timeline, ``step()`` generates one
  window for every patient, ``pull(pid)`` returns the new frames. Samples pushed ahead are used as they
  are (so a whole stimulus pushed first gives offline generation); missing samples hold the last value.
* **clocked mode**: ``start()`` runs a thread that generates window j at ``t0 + j * horizon / fps``;
  a pushed sample lands at the current clock frame; frame k is due at ``t0 + k / fps + lead_s``
  (:meth:`Chunk.due`). ``on_frames`` callbacks (called from the engine thread) hand chunks to a server.

Each patient has its own seed (torch Generator), expressiveness, emotion and guidance strengths; its
frames do not depend on which other patients share the batch (every per-row quantity, including the
guidance combination, is computed per row). Settings changed with :meth:`configure` take effect at the
next window. The engine measures itself (:meth:`stats`): real-time factor (seconds of face generated per
second of compute) and reaction latency (time from a stimulus step to the first frame whose PSPI
departs from rest).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from painface.errors import InputError
from painface.face.code import EMOTIONS, FEATURE_NAMES, feature_space, neutral_face, pspi
from painface.model.conditions import (  # noqa: F401 (re-exported)
    GUIDANCE_MAX,
    STIMULUS_RANGE,
    Conditions,
    check_samples,
    check_settings,
)
from painface.model.sampling import SamplerConfig, denoise_window
from painface.stimulus import stimulus_memory

LIVE_DEFAULTS: dict[str, Any] = {"horizon": 12, "window": 32, "steps": 8, "schedule": "full", "smooth": 2.5,
                                  "sigma_context": 0.02}
"""Live sampler settings (chosen by measurement, docs/live.md): 12 new frames per window (0.48 s at 25 fps)
after 20 context frames, 8 solver steps, the full-sequence schedule; a 2.5-frame low-pass of the new frames (chosen on
the val subjects so the live face moves like the data, docs/model.md; ``painface generate`` uses the checkpoint's
4.5); context frames held at sigma 0.02 (the checkpoint's 0.1 nearly froze the live face: 0.16x the data's movement)."""

def _head(ch: Chunk, n: int) -> Chunk:
    """The first ``n`` frames of a chunk."""
    return Chunk(ch.start, ch.face[:n], ch.stimulus[:n], None if ch.pspi is None else ch.pspi[:n], ch.fps, ch.due0,
                 ch.ready)


def _tail(ch: Chunk, n: int) -> Chunk:
    """A chunk without its first ``n`` frames."""
    return Chunk(ch.start + n, ch.face[n:], ch.stimulus[n:], None if ch.pspi is None else ch.pspi[n:], ch.fps,
                 ch.due(n), ch.ready)


def _drop_from(held: deque, frame: int) -> None:
    """Drop the held frames from ``frame`` on."""
    while held and held[-1].start >= frame:
        held.pop()
    if held and held[-1].start + len(held[-1]) > frame:
        held[-1] = _head(held[-1], frame - held[-1].start)


@dataclass
class Chunk:
    """Consecutive frames of one patient. ``start``: index of the first frame in the patient's stream;
    ``face`` ``[n, D]`` face-code units; ``stimulus`` ``[n]`` (the value the frames were generated with);
    ``pspi`` ``[n]`` (None outside FACS space); ``fps``: frames per second; ``due0``: clocked mode, monotonic
    time frame ``start`` is due (else None); ``ready``: monotonic time the chunk was generated."""

    start: int
    face: np.ndarray
    stimulus: np.ndarray
    pspi: np.ndarray | None
    fps: float
    due0: float | None = None
    ready: float | None = None

    def __len__(self) -> int:
        return int(self.face.shape[0])

    def due(self, i: int) -> float | None:
        """Monotonic time (s) frame ``start + i`` is due, in clocked mode."""
        return None if self.due0 is None else self.due0 + i / self.fps

    def shown(self, i: int) -> float | None:
        """When frame ``start + i`` can be shown: its due time, or later when it was generated late."""
        due = self.due(i)
        return None if due is None else max(due, self.ready or due)


class ReactionMeter:
    """Reaction latency of one patient: a *step* is a sample >= ``STEP_HIGH`` right after one <= ``STEP_LOW``
    (normalized stimulus); its pipeline latency runs to the first frame at or after the step generated with a
    stimulus >= ``STEP_HIGH`` (the step's sample, or a later one); its reaction is the first frame generated after
    it whose PSPI exceeds the PSPI of the frame before the step by ``margin``. Steps without a reaction within
    ``GIVE_UP_S`` are dropped."""

    STEP_LOW, STEP_HIGH, GIVE_UP_S = 0.05, 0.3, 10.0

    def __init__(self) -> None:
        self.step: tuple[int, float] | None = None  # (frame, wall time)
        self.rest: float | None = None
        self.last_pspi = 0.0
        self.latencies: list[float] = []
        self.stream_latencies: list[float] = []
        self.pipeline: list[float] = []  # step pushed -> due time of the first frame generated with it
        self._fresh = False

    def watch(self, prev: float, frames: np.ndarray, values: np.ndarray, wall: float) -> None:
        if self.step is not None:
            return
        before = np.concatenate([[prev], values[:-1]])
        hit = np.flatnonzero((before <= self.STEP_LOW) & (values >= self.STEP_HIGH))
        if hit.size:
            self.step, self.rest, self._fresh = (int(frames[hit[0]]), wall), None, True

    def frames(self, chunk: Chunk, margin: float) -> None:
        ps = chunk.pspi
        if self.step is None or ps is None:
            self.last_pspi = float(ps[-1]) if ps is not None else self.last_pspi
            return
        s, wall = self.step
        k = np.arange(chunk.start, chunk.start + len(chunk))
        if self._fresh:  # the first frame generated with the step's sample (not merely after it was pushed)
            got = np.flatnonzero((k >= s) & (chunk.stimulus >= self.STEP_HIGH))
            if got.size:
                self._fresh = False
                if chunk.due0 is not None:
                    self.pipeline.append(chunk.shown(int(got[0])) - wall)
        if self.rest is None:
            self.rest = float(ps[k < s][-1]) if (k < s).any() else self.last_pspi
        hit = np.flatnonzero((k >= s) & (ps > self.rest + margin))
        if hit.size:
            self.stream_latencies.append((k[hit[0]] - s) / chunk.fps)
            shown = chunk.shown(int(hit[0]))
            if shown is not None:
                self.latencies.append(shown - wall)
            self.step = None
        elif (k[-1] - s) / chunk.fps > self.GIVE_UP_S:
            self.step = None
        self.last_pspi = float(ps[-1])


@dataclass
class _Patient:
    pid: int
    origin: int  # engine frame at which the patient's frame 0 is generated
    generator: torch.Generator
    expressiveness: float
    emotion: np.ndarray
    guidance: np.ndarray
    context: torch.Tensor  # [c, D] model space
    history: deque  # stimulus of the last c generated frames
    samples: list[float] = field(default_factory=list)  # samples from frame `cursor` on
    pending_before: list[tuple[int, float]] = field(default_factory=list)  # late samples (frame < cursor)
    cursor: int = 0  # frames generated so far
    end: int = 0  # frame after the last pushed sample
    last: float = 0.0
    out: deque = field(default_factory=deque)
    on_frames: Callable[[Chunk], None] | None = None
    meter: ReactionMeter = field(default_factory=ReactionMeter)
    memory: np.ndarray | None = None  # stimulus-memory state after the last generated frame [K] (None: no memory)
    memory_context: np.ndarray | None = None  # the memory over the context frames [c, K]
    window_x: torch.Tensor | None = None  # the last window's frames [window, D] (model space), for a redo
    window_stim: torch.Tensor | None = None  # their stimulus [window] or [window, 1 + K] (with the memory)
    held: deque = field(default_factory=deque)  # clocked mode with redo: chunks generated, not handed out yet
    redo_from: int | None = None  # first generated frame whose stimulus turned out different (news)
    final: int = 0  # frames before this one will not be generated again (handed out, or before a redo)


class StreamEngine:
    """Live PainDiffusion for up to ``max_patients`` patients batched (see the module docstring).

    ``model``: a :class:`painface.express.PainDiffusion`; ``sampler``: overrides of its SamplerConfig
    (default :data:`LIVE_DEFAULTS`); ``lead_s``: clocked-mode delay from a frame's stimulus time to the time
    it is due (must cover one window's compute); ``threads``: torch intra-op threads set by :meth:`start`
    (None keeps torch's setting); ``rest_margin``: PSPI above rest that counts as a reaction.
    """

    NEWS = 0.05
    """A late sample differing by this much (normalized stimulus) from the value its frame was generated with
    is news: in clocked mode with ``redo`` the frames from it on that are not handed out yet are generated again."""

    def __init__(self, model: Any, *, max_patients: int = 16, lead_s: float = 0.25, threads: int | None = 1,
                 rest_margin: float = 1.0, max_queued: int | None = None, redo: bool = True,
                 emit_ahead_s: float = 0.05, **sampler: Any) -> None:
        self.model = model
        self.config: SamplerConfig = model.sampler_config(**{**LIVE_DEFAULTS, **sampler})
        net = model.denoiser.net.config
        for name in ("window", "horizon"):
            n = getattr(self.config, name)
            mult = net.frame_multiple if name == "window" else net.frames_per_token
            if n % mult:
                raise InputError(f"{name}: {n} frames; expected a multiple of {mult}")
        if max_patients < 1 or lead_s < 0 or rest_margin <= 0 or emit_ahead_s < 0:
            raise InputError("StreamEngine: expected max_patients >= 1, lead_s >= 0, rest_margin > 0, "
                             "emit_ahead_s >= 0")
        self.redo, self.emit_ahead_s = bool(redo), min(float(emit_ahead_s), float(lead_s))
        self.fps, self.max_patients, self.lead_s, self.threads = float(model.fps), max_patients, lead_s, threads
        self.rest_margin = rest_margin
        self.max_queued = max_queued  # most samples a patient may have queued ahead (None: no bound)
        self.names = tuple(model.feature_names)
        self.facs = feature_space(self.names) == "facs"
        rest = neutral_face(1)[0] if len(self.names) == len(FEATURE_NAMES) else np.asarray(model.normalizer.mean)
        self._rest = model.encode(rest).float()
        self._sigmas = self.config.window_sigmas(net.frames_per_token).to(self._rest.device)
        self._patients: dict[int, _Patient] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._frame = 0  # engine frames generated (windows x horizon)
        self._t0: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._compute: deque = deque(maxlen=100)  # (seconds, patients) per window
        self._redos: deque = deque(maxlen=100)  # (seconds, patients) per redo call
        self._redo_sigmas: dict[int, torch.Tensor] = {}
        self._wake = threading.Event()
        self.overruns = 0
        self.error: BaseException | None = None

    # ---- patients ------------------------------------------------------------------------------
    def add_patient(self, expressiveness: float = 1.0, emotion: Any = "Neutral", guidance: Any = None, *,
                    seed: int = 0, on_frames: Callable[[Chunk], None] | None = None) -> int:
        """Add a patient (joins at the next window); returns its id. ``guidance``: strengths (emotion,
        expressiveness, stimulus), default the checkpoint's. ``on_frames(chunk)`` is called from the
        engine thread with every new chunk (instead of queueing it for :meth:`pull`)."""
        expr, emo, gui = check_settings(expressiveness, emotion, guidance if guidance is not None
                                        else self.config.guidance)
        self.model.check_expressiveness(expr)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise InputError(f"seed: expected an integer, got {type(seed).__name__}")
        c = self.config.context
        with self._lock:
            if len(self._patients) >= self.max_patients:
                raise InputError(f"engine full: {self.max_patients} patients already (max_patients)")
            pid = next(self._ids)
            gen = torch.Generator().manual_seed(int(seed))
            self._patients[pid] = _Patient(pid, self._frame, gen, expr, emo, gui,
                                           self._rest[None].expand(c, -1).clone(), deque([0.0] * c, maxlen=c),
                                           on_frames=on_frames)
            taus = self.model.denoiser.net.config.stimulus_memory
            if taus:  # the patient rested at baseline before joining
                self._patients[pid].memory = np.zeros(len(taus))
                self._patients[pid].memory_context = np.zeros((c, len(taus)), np.float32)
        return pid

    def remove_patient(self, pid: int) -> None:
        """Remove a patient (its pending frames are dropped); unknown ids are ignored."""
        with self._lock:
            self._patients.pop(pid, None)

    @property
    def patients(self) -> list[int]:
        with self._lock:
            return list(self._patients)

    def _get(self, pid: int) -> _Patient:
        p = self._patients.get(pid)
        if p is None:
            raise InputError(f"patient {pid!r}: no such patient (removed, or never added)")
        return p

    def configure(self, pid: int, *, expressiveness: Any = None, emotion: Any = None, guidance: Any = None) -> None:
        """Change a patient's settings; they take effect at the next window."""
        expr, emo, gui = check_settings(expressiveness, emotion, guidance)
        if expr is not None:
            self.model.check_expressiveness(expr)
        with self._lock:
            p = self._get(pid)
            p.expressiveness = p.expressiveness if expr is None else expr
            p.emotion = p.emotion if emo is None else emo
            p.guidance = p.guidance if gui is None else gui

    def settings(self, pid: int) -> dict[str, Any]:
        """A patient's settings: expressiveness, emotion (8 probabilities by name), guidance."""
        with self._lock:
            p = self._get(pid)
            return {"expressiveness": p.expressiveness, "emotion": dict(zip(EMOTIONS, p.emotion.tolist(), strict=True)),
                    "guidance": p.guidance.tolist()}

    # ---- stimulus in, frames out -----------------------------------------------------------------
    def push(self, pid: int, samples: Any, *, replace: bool = False) -> None:
        """Append stimulus samples (normalized, at the engine's fps) to a patient's timeline. Clocked mode:
        the first sample lands at the current clock frame (a gap holds the last value); samples for frames
        already generated become the true stimulus of the next window's context. ``replace`` ("latest
        wins", a slider): the samples land at the current frame and replace any queued after it.
        With ``max_queued`` set, a push that would queue more samples ahead of the generated frames
        raises :class:`InputError` and queues nothing."""
        arr = check_samples(samples)
        if arr.size == 0:
            return
        now = time.monotonic()
        with self._lock:
            p = self._get(pid)
            base = p.cursor if self._t0 is None else int((now - self._t0) * self.fps) - p.origin
            if replace:
                del p.samples[max(base - p.cursor, 0):]
                p.end = min(p.end, max(base, p.cursor))
            at = max(base, p.end)
            ahead = at + arr.size - p.cursor
            if self.max_queued is not None and ahead > self.max_queued:
                raise InputError(f"stimulus queue full: {ahead} samples ahead of the generated frames; at most "
                                 f"{self.max_queued} ({self.max_queued / self.fps:g} s); send fewer, later")
            if len(p.pending_before) > 4 * self.config.window:  # late samples: keep the latest
                del p.pending_before[: -2 * self.config.window]
            frames = at + np.arange(arr.size)
            late = frames < p.cursor
            p.pending_before.extend(zip(frames[late].tolist(), arr[late].tolist(), strict=True))
            gap = max(at, p.cursor) - (p.cursor + len(p.samples))
            p.samples.extend([p.last] * max(gap, 0) + arr[~late].tolist())
            p.meter.watch(p.last, frames, arr, now)
            p.last, p.end = float(arr[-1]), at + arr.size
            if self.redo and self._t0 is not None and late.any():
                self._note_news(p, frames[late], arr[late])

    def _note_news(self, p: _Patient, frames: np.ndarray, values: np.ndarray) -> None:
        """Mark the first late sample that differs from the stimulus its frame was generated with (news)."""
        first = p.cursor - len(p.history)
        used = np.asarray(p.history, np.float64)
        k = frames - first
        ok = (k >= 0) & (frames >= p.final)
        news = frames[ok][np.abs(values[ok] - used[k[ok]]) >= self.NEWS]
        if news.size:
            p.redo_from = int(news[0]) if p.redo_from is None else min(p.redo_from, int(news[0]))
            self._wake.set()

    def pull(self, pid: int, *, paced: bool = False) -> Chunk | None:
        """The patient's frames generated since the last pull, as one chunk (None when there are none).
        ``paced`` (clocked mode): only frames already due."""
        with self._lock:
            p = self._get(pid)
            if not p.out:
                return None
            chunks = list(p.out)
            if paced:
                now = time.monotonic()
                chunks = [c for c in chunks if c.due0 is None or c.due0 <= now]
                if not chunks:
                    return None
            for _ in chunks:
                p.out.popleft()
        if len(chunks) == 1:
            return chunks[0]
        return Chunk(chunks[0].start, np.concatenate([c.face for c in chunks]),
                     np.concatenate([c.stimulus for c in chunks]),
                     None if chunks[0].pspi is None else np.concatenate([c.pspi for c in chunks]),
                     self.fps, chunks[0].due0)

    # ---- generation ------------------------------------------------------------------------------
    def step(self) -> int:
        """Generate one window (``horizon`` frames) for every patient; returns the number of patients."""
        h, c = self.config.horizon, self.config.context
        with self._lock:
            batch = list(self._patients.values())
            self._frame += h  # a patient added from now on joins the next window
            for p in batch:  # this window takes any news for its frames; held older frames stay as they are
                p.redo_from = None
            starts = [p.cursor for p in batch]
            inputs = [self._window_inputs(p) for p in batch]  # (the frames count as generated from here on)
        if not batch:
            return 0
        t = time.perf_counter()
        x = self._generate(batch, inputs)
        seconds = time.perf_counter() - t
        face = self.model.decode(x[:, c:])
        ps = pspi(face, self.names) if self.facs else None
        ready = time.monotonic()
        calls = []
        with self._lock:
            self._compute.append((seconds, len(batch)))
            hold = self.redo and self._t0 is not None
            for i, (p, (stim, _)) in enumerate(zip(batch, inputs, strict=True)):
                chunk = self._took_window(p, x[i], stim, starts[i], face[i], None if ps is None else ps[i], ready)
                if p.pid not in self._patients:
                    continue
                if hold:
                    p.held.append(chunk)
                else:
                    self._hand_out(p, chunk, calls)
        self._call(calls)
        return len(batch)

    @staticmethod
    def _hand_out(p: _Patient, chunk: Chunk, calls: list) -> None:
        if p.on_frames is None:
            p.out.append(chunk)
        else:
            calls.append((p.on_frames, chunk))

    @staticmethod
    def _call(calls: list) -> None:
        for fn, chunk in calls:
            try:
                fn(chunk)
            except Exception:  # a consumer's failure must not stop the other patients
                pass

    def _emit(self, now: float, ahead: float | None = None) -> float | None:
        """Hand out the held frames due within ``ahead`` (default ``emit_ahead_s``; ``math.inf``: all) of ``now``;
        returns the monotonic time the next held frame becomes due for handing out (None: nothing held)."""
        ahead = self.emit_ahead_s if ahead is None else ahead
        calls, nxt = [], None
        with self._lock:
            for p in self._patients.values():
                while p.held:
                    ch = p.held[0]
                    n = int(np.clip(np.floor((now + ahead - ch.due0) * self.fps) + 1, 0, len(ch)))
                    if n == 0:
                        break
                    p.held.popleft()
                    if n < len(ch):
                        p.held.appendleft(_tail(ch, n))
                        ch = _head(ch, n)
                    p.final = max(p.final, ch.start + len(ch))
                    self._hand_out(p, ch, calls)
                if p.held:
                    t = p.held[0].due0 - self.emit_ahead_s
                    nxt = t if nxt is None else min(nxt, t)
        self._call(calls)
        return nxt

    def _redo_estimate(self, rows: int) -> float:
        """Expected seconds of a redo call of ``rows`` patients: the median single-patient redo (0.03 s before
        one was timed) plus the windows' median compute per patient for each further row."""
        single = [s for s, k in self._redos if k == 1]
        base = float(np.median(single)) if single else 0.03
        per_row = float(np.median([s / k for s, k in self._compute])) if self._compute else base
        return base + (rows - 1) * per_row

    def _redo_news(self, deadline: float) -> int:
        """Generate again, with the stimulus that came, the held frames of every patient with news (from the news
        on), in one batched call per length. Only as many patients (earliest news first) as can be redone before
        ``deadline`` (the next window, which takes the others' news anyway). Returns the number redone."""
        with self._lock:
            news = sorted((p.redo_from, p.pid) for p in self._patients.values() if p.redo_from is not None)
        if not news:
            return 0
        now = time.monotonic()
        k = len(news)
        while k and now + self._redo_estimate(k) > deadline:
            k -= 1
        est = self._redo_estimate(max(k, 1))
        # frames due before the redo can end go out now (the engine thread hands out nothing while it computes)
        self._emit(now, ahead=self.emit_ahead_s + est)
        fpt = self.model.denoiser.net.config.frames_per_token
        w, h = self.config.window, self.config.horizon
        groups: dict[int, list[tuple[_Patient, int]]] = {}
        chosen = {pid for _, pid in news[:k]}
        with self._lock:
            for p in self._patients.values():
                if p.redo_from is None:
                    continue
                f, p.redo_from = p.redo_from, None
                if p.window_x is None or p.pid not in chosen:
                    continue
                # frames due before the redo can end were just handed out: keep them
                safe = int(np.ceil((now + est + self.emit_ahead_s - self.lead_s - self._t0) * self.fps)) - p.origin
                first = p.held[0].start if p.held else p.cursor
                lo = max(first, safe, p.cursor - h)
                n = -(-(p.cursor - f) // fpt) * fpt  # from the start of the token holding the news, if it can
                if p.cursor - n < lo:
                    n = (p.cursor - lo) // fpt * fpt
                if n >= fpt:
                    groups.setdefault(n, []).append((p, n))
            jobs = {n: [(p, *self._redo_inputs(p, n)) for p, n in ps] for n, ps in groups.items()}
        done = 0
        for n, job in jobs.items():
            t = time.perf_counter()
            cfg = dataclasses.replace(self.config, horizon=n)
            if n not in self._redo_sigmas:
                self._redo_sigmas[n] = cfg.window_sigmas(fpt).to(self._rest.device)
            batch = [p for p, *_ in job]
            ctx = torch.stack([p.window_x[: w - n] for p in batch])
            x = self._generate(batch, [(st, eps) for _, st, eps in job], ctx, self._redo_sigmas[n], cfg)
            seconds = time.perf_counter() - t
            face = self.model.decode(x[:, w - n:])
            ps = pspi(face, self.names) if self.facs else None
            ready = time.monotonic()
            with self._lock:
                self._redos.append((seconds, len(batch)))
                for i, (p, st, _) in enumerate(job):
                    if p.pid not in self._patients or p.window_x is None:
                        continue
                    r = p.cursor - n
                    chunk = self._took_window(p, x[i], st, r, face[i], None if ps is None else ps[i], ready)
                    p.history.extend((st if st.ndim == 1 else st[:, 0])[-len(p.history):].tolist())
                    if p.memory is not None:
                        p.memory = st[-1, 1:].double().numpy()
                        p.memory_context = st[-self.config.context:, 1:].numpy().copy()
                    _drop_from(p.held, r)
                    p.held.append(chunk)
                    p.final = max(p.final, r)
                    done += 1
                    if p.pending_before:  # samples that came during the compute: news against what was redone?
                        f, v = (np.array(a) for a in zip(*p.pending_before, strict=True))
                        self._note_news(p, f.astype(int), v.astype(np.float64))
        return done

    def _took_window(self, p: _Patient, x: torch.Tensor, stim: torch.Tensor, start: int, face: np.ndarray,
                     ps: np.ndarray | None, ready: float) -> Chunk:
        """Keep a generated window ``x`` [window, D] (and its stimulus) as the patient's last one, and return its new
        frames (from patient frame ``start``) as a chunk, measured by the reaction meter. Clocked mode: frame k is due
        at ``t0 + (origin + k) / fps + lead_s``."""
        raw = stim if stim.ndim == 1 else stim[:, 0]
        due0 = None if self._t0 is None else self._t0 + (p.origin + start) / self.fps + self.lead_s
        chunk = Chunk(start, face, raw[-len(face):].numpy().copy(), ps, self.fps, due0, ready)
        p.window_x, p.window_stim = x.clone(), stim.clone()
        p.context = x[-self.config.context:].clone()
        if ps is not None:
            p.meter.frames(chunk, self.rest_margin)
        return chunk

    def _redo_inputs(self, p: _Patient, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(window stimulus with the last ``n`` frames' true stimulus, noise [2, window, D]) for a redo."""
        w = self.config.window
        st = p.window_stim.clone()
        raw = st if st.ndim == 1 else st[:, 0]
        late = dict(p.pending_before)  # frame -> sample; a sample holds until the next
        first = p.cursor - w  # the window's first frame
        older = [f for f in late if f < first]
        v, changed = (late[max(older)] if older else None), w
        for j in range(w):  # the true stimulus over the window, context included, from the first late sample on
            v = late.get(first + j, v)
            if v is not None and float(raw[j]) != v:
                raw[j] = v
                changed = min(changed, j)
        if p.memory is not None and changed < w:  # the memory from the first changed frame on
            j0 = max(changed, 1)
            state = st[j0 - 1, 1:].double().numpy()
            taus = self.model.denoiser.net.config.stimulus_memory
            mem, _ = stimulus_memory(raw[j0:].double().numpy(), taus, state)
            st[j0:, 1:] = torch.from_numpy(mem)
        eps = torch.randn(2, w, self._rest.shape[0], generator=p.generator)
        return st, eps

    def _window_inputs(self, p: _Patient) -> tuple[torch.Tensor, torch.Tensor]:
        """(stimulus of the window [window], noise [2, window, D]); the consumed samples are dropped and the new
        frames count as generated (cursor and history move on now, so that a sample pushed while the window is
        computed lands on the right frame)."""
        c, h = self.config.context, self.config.horizon
        hist = list(p.history)
        for frame, v in p.pending_before:  # late samples: the true stimulus of already generated frames
            k = frame - (p.cursor - c)
            if 0 <= k < c:
                hist[k] = v
        p.pending_before.clear()
        new = p.samples[:h]
        new = new + [p.last] * (h - len(new))
        del p.samples[:h]
        stim = torch.tensor(hist + new, dtype=torch.float32)
        if p.memory is not None:  # carried from window to window (late samples do not revise it)
            mem, p.memory = stimulus_memory(np.asarray(new, np.float64), self.model.denoiser.net.config.stimulus_memory,
                                            p.memory)
            mem = np.concatenate([p.memory_context, mem])
            p.memory_context = mem[-c:]
            stim = torch.cat([stim[:, None], torch.from_numpy(mem)], dim=1)
        eps = torch.randn(2, self.config.window, self._rest.shape[0], generator=p.generator)
        p.history.extend(new)
        p.cursor += h
        return stim, eps

    def _generate(self, batch: list[_Patient], inputs: list[tuple[torch.Tensor, torch.Tensor]],
                  ctx: torch.Tensor | None = None, sigmas: torch.Tensor | None = None,
                  cfg: SamplerConfig | None = None) -> torch.Tensor:
        cfg, dev = cfg or self.config, self._rest.device
        stim = torch.stack([s for s, _ in inputs]).to(dev)
        eps = torch.stack([e for _, e in inputs], dim=1).to(dev)  # [2, B, W, D]
        expr = torch.tensor([p.expressiveness for p in batch], dtype=torch.float32, device=dev)
        emo = torch.as_tensor(np.stack([p.emotion for p in batch]), device=dev)
        lam = torch.as_tensor(np.stack([p.guidance for p in batch]), device=dev)  # [B, 3]
        ctx = torch.stack([p.context for p in batch]) if ctx is None else ctx
        return denoise_window(self.model.denoiser, ctx, Conditions(stim, expr, emo), lam, eps,
                              self._sigmas if sigmas is None else sigmas, cfg)

    # ---- clocked mode ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the clocked thread: window j at t0 + j * horizon / fps (t0 = now)."""
        if self._thread is not None:
            raise InputError("StreamEngine.start: already running")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self._stop.clear()
        with self._lock:
            self._t0 = time.monotonic() - self._frame / self.fps
        self._thread = threading.Thread(target=self._run, name="painface-stream", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clocked thread (the engine can be started again or stepped)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._emit(0.0, ahead=math.inf)  # nothing generated is lost
        self._thread, self._t0 = None, None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        period = self.config.horizon / self.fps
        while not self._stop.is_set():
            target = self._t0 + self._frame / self.fps
            wait = target - time.monotonic()
            try:
                if wait > 0:
                    nxt = None
                    if self.redo:  # between windows: news, then hand out what is due; wake for either
                        self._redo_news(target)
                        nxt = self._emit(time.monotonic())
                    until = target if nxt is None else min(target, max(nxt, time.monotonic() + 2 / self.fps))
                    self._wake.wait(max(until - time.monotonic(), 0.0))
                    self._wake.clear()
                    continue
                if -wait > period:  # more than a window late: count it and let the clock slip, so that lag
                    self.overruns += 1  # does not pile up (the stream's time stretches instead)
                    with self._lock:
                        self._t0 += -wait
                if self.redo:  # what comes due while the window computes goes out first
                    comp = float(np.median([s for s, _ in self._compute])) if self._compute else 0.0
                    self._emit(time.monotonic(), ahead=self.emit_ahead_s + comp)
                self.step()
                if self.redo:
                    self._emit(time.monotonic())
            except Exception as e:  # keep the reason; the server reports it
                self.error = e
                break

    def stats(self) -> dict[str, Any]:
        """Self-measurement. ``real_time_factor``: seconds of face per second of compute over the recent
        windows (> 1 keeps up); ``window_ms``: median compute per window; ``overruns``: windows started
        more than a window late; ``pipeline_s``: median time from a stimulus step (clocked mode) to the due
        time of the first frame generated with it; ``reaction_s``: median time from a stimulus step (clocked
        mode) to the due time of the first frame whose PSPI departs from rest, and ``reaction_stream_s`` the
        same in stream time (frames / fps, both modes); ``reactions``: how many were measured."""
        with self._lock:
            comp = np.array([s for s, _ in self._compute], dtype=np.float64)
            lat = [v for p in self._patients.values() for v in p.meter.latencies]
            stream = [v for p in self._patients.values() for v in p.meter.stream_latencies]
            pipe = [v for p in self._patients.values() for v in p.meter.pipeline]
            n = len(self._patients)
            redo = np.array([s for s, _ in self._redos], dtype=np.float64)
        period = self.config.horizon / self.fps
        return {
            "patients": n,
            "horizon": self.config.horizon, "window": self.config.window, "steps": self.config.steps,
            "schedule": self.config.schedule, "fps": self.fps,
            "windows": int(comp.size),
            "window_ms": float(np.median(comp) * 1e3) if comp.size else None,
            "real_time_factor": float(period * comp.size / comp.sum()) if comp.size else None,
            "overruns": self.overruns,
            "redos": int(redo.size), "redo_ms": float(np.median(redo) * 1e3) if redo.size else None,
            "pipeline_s": float(np.median(pipe)) if pipe else None,
            "reaction_s": float(np.median(lat)) if lat else None,
            "reaction_stream_s": float(np.median(stream)) if stream else None,
            "reactions": len(stream),
        }

