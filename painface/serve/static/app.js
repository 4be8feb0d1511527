// painface live page: one WebSocket session (one patient), controls -> messages, frames -> face and plot.
// Protocol: docs/live.md.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { fps: 25, queue: [], playFrom: null, next: 0, history: [], peak: 0, face: null, ws: null,
    features: [], pspiIndex: null, shown: 0 };
  window.painfaceState = state; // for tests and the console

  const setStatus = (text) => { $("status").textContent = text; };
  const showMessage = (text) => { $("message").textContent = text; };
  const send = (msg) => { if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(msg)); };

  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    state.ws = ws;
    ws.onopen = () => setStatus("connected");
    ws.onclose = () => { setStatus("disconnected (reload to reconnect)"); };
    ws.onmessage = (ev) => {
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

  function show(frame) {
    if (state.face) state.face.draw(frame.face);
    $("pspi-value").textContent = frame.pspi == null ? "–" : frame.pspi.toFixed(2);
    $("stim-value").textContent = frame.stim.toFixed(2);
    if (frame.pspi != null && frame.pspi > state.peak) { state.peak = frame.pspi; $("pspi-peak").textContent = state.peak.toFixed(2); }
    state.history.push(frame); state.shown += 1;
    if (state.history.length > state.fps * 10) state.history.shift();
  }

  function plot() {
    const cv = $("plot"), g = cv.getContext("2d"), w = cv.width, h = cv.height, n = state.fps * 10;
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "#ddd"; g.lineWidth = 1;
    for (let i = 1; i < 4; i++) { g.beginPath(); g.moveTo(0, (h * i) / 4); g.lineTo(w, (h * i) / 4); g.stroke(); }
    const line = (key, scale, color) => {
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      state.history.forEach((f, i) => { const x = w - ((state.history.length - 1 - i) * w) / n;
        const y = h - 4 - Math.min(1, Math.max(0, (f[key] || 0) / scale)) * (h - 8);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y); });
      g.stroke();
    };
    line("stim", 1, "#1f6fb2"); line("pspi", 8, "#b3261e");
  }

  function tick(now) { // play frames at fps from a small buffer; resync when far behind
    if (state.playFrom !== null && state.queue.length) {
      const due = state.next + Math.floor(((now - state.playFrom) / 1000) * state.fps);
      if (state.queue.length > state.fps * 2) state.queue.splice(0, state.queue.length - state.fps);
      let frame = null;
      while (state.queue.length && state.queue[0].k <= due) frame = state.queue.shift();
      if (frame) { show(frame); plot(); }
    }
    requestAnimationFrame(tick);
  }

  PainFace.load($("face")).then((f) => { state.face = f; }).catch((e) => showMessage(`face: ${e.message}`));
  connect();
  requestAnimationFrame(tick);
})();
