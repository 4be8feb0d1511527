// painface live page: one WebSocket session (one patient), controls -> messages, frames -> head and plot.
// Protocol: docs/live.md.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { fps: 25, queue: [], playFrom: null, next: 0, history: [], peak: 0, face: null, ws: null,
    features: [], shown: 0, identity: null, headLoaded: undefined, headLoads: 0,
    recording: false, recordSince: null, recordMax: null, pendingRecording: null, lastRecording: null };
  window.painfaceState = state; // for tests and the console

  const setStatus = (text) => { $("status").textContent = text; };
  const showMessage = (text) => { $("message").textContent = text; };
  const send = (msg) => { if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(msg)); };

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    state.ws = ws;
    ws.onopen = () => setStatus("connected");
    ws.onclose = () => { setStatus("disconnected (reload to reconnect)"); setRecording(false); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") { saveRecording(ev.data); return; } // the recorded npz (a Blob)
      const msg = JSON.parse(ev.data);
      if (msg.type === "hello") {
        state.fps = msg.fps; state.features = msg.features;
        setStatus(`patient ${msg.session} · ${msg.fps} fps · horizon ${msg.horizon} frames (${(msg.horizon / msg.fps).toFixed(2)} s)`);
        const sel = $("emotion"); sel.innerHTML = "";
        for (const e of msg.emotions) sel.add(new Option(e, e, false, e === "Neutral"));
        if (msg.trained_expressiveness) {
          // the slider spans the checkpoint's training subjects (beyond them the model extrapolates)
          const x = $("expressiveness");
          x.max = (Math.ceil(msg.trained_expressiveness[1] * 10) / 10).toFixed(1);
          x.title = `training subjects: ${msg.trained_expressiveness[0]}-${msg.trained_expressiveness[1]} PSPI`;
          $("expressiveness-out").textContent = (+x.value).toFixed(1);
        }
        const g = (msg.settings && msg.settings.guidance) || [];
        ["g-emotion", "g-expr", "g-stim"].forEach((id, i) => {
          if (g[i] != null) { $(id).value = g[i]; $(`${id}-out`).textContent = (+g[i]).toFixed(1); }
        });
        sendSettings();
      } else if (msg.type === "frames") {
        for (let i = 0; i < msg.face.length; i++) {
          state.queue.push({ k: msg.start + i, face: msg.face[i], stim: msg.stimulus[i], pspi: msg.pspi ? msg.pspi[i] : null });
        }
        if (state.playFrom === null) { state.playFrom = performance.now() + 80; state.next = msg.start; }
      } else if (msg.type === "record") {
        if (msg.recording) { state.recordMax = msg.max_s; setRecording(true); return; }
        setRecording(false);
        if (msg.frames > 0) state.pendingRecording = msg; // the npz follows as a binary message
        else $("record-status").textContent = "nothing recorded";
      } else if (msg.type === "error") {
        showMessage(`${msg.code}: ${msg.message}`);
      } else if (msg.type === "stats") {
        const lat = msg.reaction_s != null ? ` · reaction ${msg.reaction_s.toFixed(2)} s` : "";
        $("engine").textContent = `engine: ${msg.patients} patient(s), ${msg.real_time_factor ? msg.real_time_factor.toFixed(1) : "–"}x real time, ${msg.window_ms ? msg.window_ms.toFixed(0) : "–"} ms per window${lat}`;
      } else if (msg.type === "settings") {
        showMessage("");
      }
    };
  }

  function sendSettings() {
    send({ type: "settings", expressiveness: +$("expressiveness").value, emotion: $("emotion").value,
      guidance: [+$("g-emotion").value, +$("g-expr").value, +$("g-stim").value] });
  }

  function bind(id, digits, onChange) {
    const el = $(id), out = $(`${id}-out`);
    el.addEventListener("input", () => { out.textContent = (+el.value).toFixed(digits); onChange(); });
  }
  bind("stimulus", 2, () => send({ type: "stimulus", value: +$("stimulus").value }));
  for (const id of ["expressiveness", "g-emotion", "g-expr", "g-stim"]) bind(id, 1, sendSettings);
  $("emotion").addEventListener("change", sendSettings);
  $("pain").addEventListener("click", () => send({ type: "pain", peak: 1.0, hold_s: 1.0, decay_s: 3.0 }));

  // ---- identity: reload the head's glb; the stream goes on
  const clock = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  function loadHead(seed) {
    const url = seed == null ? "/face.glb" : `/face.glb?identity=${seed}`;
    state.identity = seed; const n = ++state.headLoads;
    PainFace.load($("face"), url, state.face).then((f) => {
      if (n !== state.headLoads) return; // a later choice won
      state.face = f; state.headLoaded = seed; showMessage("");
    }).catch((e) => showMessage(`head: ${e.message}`));
  }
  fetch("/api/identities").then((r) => r.json()).then((ids) => {
    const sel = $("identity");
    for (const p of ids.presets) {
      sel.add(new Option(`#${p.seed}: ${p.sex}, ${p.age}, skin tone ${p.skin_tone}, ${p.hair.replace("_", " ")} ${p.hair_style} hair`, String(p.seed)));
    }
    $("identity-seed").max = ids.max_seed;
  }).catch(() => {});
  $("identity").addEventListener("change", () => {
    const v = $("identity").value; $("identity-seed").value = v;
    loadHead(v === "" ? null : +v);
  });
  $("identity-seed").addEventListener("change", () => {
    const el = $("identity-seed"), v = el.value.trim();
    if (v === "") { $("identity").value = ""; loadHead(null); return; }
    if (!/^[0-9]+$/.test(v) || +v > +el.max) { showMessage(`identity: a seed is an integer 0..${el.max}`); return; }
    $("identity").value = [...$("identity").options].some((o) => o.value === String(+v)) ? String(+v) : "";
    loadHead(+v);
  });

  // ---- record: the server keeps the session's frames; on stop it sends them as a face-code .npz
  function setRecording(on) {
    state.recording = on; state.recordSince = on ? performance.now() : null;
    const b = $("record");
    b.textContent = on ? "■ Stop recording" : "● Record"; b.setAttribute("aria-pressed", String(on));
    b.classList.toggle("on", on);
  }
  $("record").addEventListener("click", () => {
    send(state.recording ? { type: "record", action: "stop" } : { type: "record", action: "start", identity: state.identity });
  });
  function saveRecording(blob) {
    const info = state.pendingRecording || { frames: 0, seconds: 0 };
    state.pendingRecording = null;
    const t = new Date(), pad = (x) => String(x).padStart(2, "0");
    const name = `painface-live-${t.getFullYear()}${pad(t.getMonth() + 1)}${pad(t.getDate())}-${pad(t.getHours())}${pad(t.getMinutes())}${pad(t.getSeconds())}.npz`;
    const url = URL.createObjectURL(new Blob([blob], { type: "application/octet-stream" }));
    const a = document.createElement("a"); a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    state.lastRecording = { name, frames: info.frames, seconds: info.seconds, bytes: blob.size, reason: info.reason };
    $("record-status").textContent = `saved ${name}: ${info.frames} frames (${clock(info.seconds)})` +
      (info.reason === "limit" ? " — the longest recording" : "");
  }

  function show(frame) {
    if (state.face) state.face.draw(frame.face);
    $("pspi-value").textContent = frame.pspi == null ? "–" : frame.pspi.toFixed(2);
    $("stim-value").textContent = frame.stim.toFixed(2);
    if (frame.pspi != null && frame.pspi > state.peak) { state.peak = frame.pspi; $("pspi-peak").textContent = state.peak.toFixed(2); }
    state.history.push(frame); state.shown += 1;
    if (state.history.length > state.fps * plotSeconds()) state.history.shift();
    if (state.recording) {
      const s = (performance.now() - state.recordSince) / 1000;
      $("record-status").textContent = `recording ${clock(s)} (at most ${clock(state.recordMax || 1800)})`;
    }
  }

  // ---- plot: PSPI on a fixed 0-16 axis above the stimulus (0-1.5), a shared time axis in seconds
  const plotSeconds = () => +$("plot").dataset.seconds || 10;
  function plot() {
    const cv = $("plot"), g = cv.getContext("2d"), W = cv.width, H = cv.height;
    const pspiMax = +cv.dataset.pspiMax, stimMax = +cv.dataset.stimulusMax, span = plotSeconds();
    const L = 48, Rm = 12, T = 10, B = 28, gap = 14;
    const pw = W - L - Rm, ph = H - T - B - gap, hp = Math.round(ph * 0.68), hs = ph - hp;
    const panels = [
      { key: "pspi", max: pspiMax, ticks: [0, 4, 8, 12, 16].filter((v) => v <= pspiMax), top: T, h: hp, color: "#b3261e", title: "PSPI" },
      { key: "stim", max: stimMax, ticks: [0, 0.5, 1, 1.5].filter((v) => v <= stimMax), top: T + hp + gap, h: hs, color: "#1f6fb2", title: "stimulus" },
    ];
    g.clearRect(0, 0, W, H);
    g.font = "12px system-ui, sans-serif"; g.textBaseline = "middle";
    const last = state.history.length ? state.history[state.history.length - 1].k : 0;
    const tNow = last / state.fps, x = (t) => L + pw - ((tNow - t) / span) * pw;
    for (const p of panels) {
      const y = (v) => p.top + p.h - (Math.min(p.max, Math.max(0, v)) / p.max) * p.h;
      g.strokeStyle = "#e3e3e3"; g.lineWidth = 1; g.fillStyle = "#555"; g.textAlign = "right";
      for (const v of p.ticks) {
        g.beginPath(); g.moveTo(L, y(v)); g.lineTo(L + pw, y(v)); g.stroke();
        g.fillText(String(v), L - 6, y(v));
      }
      g.save(); g.translate(12, p.top + p.h / 2); g.rotate(-Math.PI / 2); g.textAlign = "center";
      g.fillStyle = p.color; g.fillText(p.title, 0, 0); g.restore();
      g.strokeStyle = "#999"; g.strokeRect(L, p.top, pw, p.h);
      g.save(); g.beginPath(); g.rect(L, p.top, pw, p.h); g.clip();
      g.strokeStyle = p.color; g.lineWidth = 2; g.beginPath();
      let started = false;
      for (const f of state.history) {
        if (f[p.key] == null) continue;
        const px = x(f.k / state.fps), py = y(f[p.key]);
        if (!started) { g.moveTo(px, py); started = true; } else g.lineTo(px, py);
      }
      g.stroke(); g.restore();
    }
    // time axis: a tick every second, labelled every 2 s
    const axisY = T + ph + gap; g.textAlign = "center"; g.textBaseline = "top"; g.fillStyle = "#555";
    g.strokeStyle = "#999"; g.lineWidth = 1;
    for (let s = Math.ceil(tNow - span); s <= Math.floor(tNow); s++) {
      if (s < 0) continue;
      const px = x(s);
      g.beginPath(); g.moveTo(px, axisY); g.lineTo(px, axisY + (s % 2 === 0 ? 6 : 3)); g.stroke();
      if (s % 2 === 0) g.fillText(`${s} s`, px, axisY + 8);
    }
  }

  function tick() { // play frames at fps from a small buffer; resync when far behind or far ahead
    state.ticks = (state.ticks || 0) + 1;
    try {
      if (state.playFrom !== null && state.queue.length) {
        // performance.now(), not the rAF timestamp: headless Chromium under load hands out stale ones
        const now = performance.now();
        let due = state.next + Math.floor(((now - state.playFrom) / 1000) * state.fps);
        if (state.queue.length > state.fps * 2) {
          state.queue.splice(0, state.queue.length - state.fps);
          if (state.queue[0].k > due) { state.next = state.queue[0].k; state.playFrom = now; due = state.next; }
        }
        let frame = null;
        while (state.queue.length && state.queue[0].k <= due) frame = state.queue.shift();
        if (frame) { show(frame); plot(); }
      }
    } catch (e) {
      state.tickError = String(e && e.stack || e); showMessage(`page: ${e.message}`);
    } finally {
      requestAnimationFrame(tick);
    }
  }

  loadHead(null);
  connect();
  plot();
  requestAnimationFrame(tick);
})();
