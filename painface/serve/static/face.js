// painface head renderer: loads /face.glb[?identity=N] (the whole head: one mesh, vertex colours, one morph
// target per AU at intensity 5, positions in metres relative to the head joint) and draws a FACS face code
// [17 AUs (0-5), head pitch, yaw, roll (degrees)] with WebGL. No third-party code.
"use strict";
const PainFace = (() => {
  function parseGlb(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < 20 || dv.getUint32(0, true) !== 0x46546C67) throw new Error("face.glb: not a glTF binary");
    const jsonLen = dv.getUint32(12, true);
    const doc = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 20, jsonLen)));
    const binStart = 20 + jsonLen + 8;
    const read = (i) => {
      const acc = doc.accessors[i], view = doc.bufferViews[acc.bufferView];
      const n = acc.count * { SCALAR: 1, VEC3: 3, VEC4: 4 }[acc.type];
      const off = binStart + (view.byteOffset || 0) + (acc.byteOffset || 0);
      return acc.componentType === 5125 ? new Uint32Array(buf, off, n) : new Float32Array(buf, off, n);
    };
    const prim = doc.meshes[0].primitives[0];
    return {
      position: read(prim.attributes.POSITION), color: read(prim.attributes.COLOR_0),
      index: read(prim.indices), targets: prim.targets.map((t) => read(t.POSITION)),
      names: doc.meshes[0].extras.targetNames, min: doc.accessors[prim.attributes.POSITION].min,
      max: doc.accessors[prim.attributes.POSITION].max,
    };
  }

  // The rig's limits (painface.face.head.effective_aus): lids (AU43 + AU45) at most fully closed, jaw AUs
  // (25/26/27, by their share of jawOpen) at most fully open; both scaled down together.
  const JAW_AUS = { AU25: 0.15, AU26: 0.6, AU27: 1.0 };
  function effectiveAus(code, names) {
    const a = names.map((_, k) => Math.min(Math.max(+code[k] || 0, 0), 5));
    const i43 = names.indexOf("AU43"), i45 = names.indexOf("AU45");
    if (i43 >= 0 && i45 >= 0 && a[i43] + a[i45] > 5) {
      const s = 5 / (a[i43] + a[i45]); a[i43] *= s; a[i45] *= s;
    }
    let jaw = 0; const idx = [];
    for (const [name, share] of Object.entries(JAW_AUS)) {
      const i = names.indexOf(name);
      if (i >= 0) { jaw += (a[i] * share) / 5; idx.push(i); }
    }
    if (jaw > 1) for (const i of idx) a[i] /= jaw;
    return a;
  }

  // Lighting as painface.face.render.HEAD_LIGHTING (camera space): soft key + fill + ambient, Blinn-Phong
  // highlight, rim; per-pixel normals; back faces (the mouth's inside) in the interior colour.
  const LIGHT = { key_dir: [-0.45, 0.5, 0.75], key: 0.72, fill_dir: [0.75, 0.0, 0.66], fill: 0.26, ambient: 0.14,
    specular: 0.14, shininess: 20.0, wrap: 0.3, rim: 0.3, background: [0.20, 0.22, 0.26], interior: [0.22, 0.07, 0.06] };
  const VS = `attribute vec3 p; attribute vec3 n; attribute vec3 c; uniform mat3 R; uniform mat4 P; uniform vec3 C;
    varying vec3 vn; varying vec3 vc; varying vec3 vp;
    void main() { vec3 q = R * p - C; vn = R * n; vc = c; vp = q; gl_Position = P * vec4(q, 1.0); }`;
  const FS = `#ifdef GL_FRAGMENT_PRECISION_HIGH
    precision highp float;
    #else
    precision mediump float;
    #endif
    varying vec3 vn; varying vec3 vc; varying vec3 vp;
    uniform vec3 keyDir; uniform vec3 fillDir; uniform vec4 gains; uniform vec4 shape; uniform vec3 interior;
    vec3 srgb(vec3 x) { x = clamp(x, 0.0, 1.0);
      return mix(12.92 * x, 1.055 * pow(x, vec3(1.0 / 2.4)) - 0.055, step(vec3(0.0031308), x)); }
    void main() {
      if (!gl_FrontFacing) { gl_FragColor = vec4(srgb(interior), 1.0); return; }
      vec3 nn = normalize(vn); vec3 v = normalize(-vp);
      float wrap = shape.z;
      float ndk = dot(nn, keyDir);
      float dk = max(0.0, (ndk + wrap) / (1.0 + wrap));
      float df = max(0.0, (dot(nn, fillDir) + wrap) / (1.0 + wrap));
      float nh = max(0.0, dot(nn, normalize(keyDir + v)));
      float spec = ndk > 0.0 ? shape.x * pow(nh, shape.y) : 0.0;
      float nv = max(0.0, dot(nn, v));
      float rim = shape.w * (1.0 - nv) * (1.0 - nv);
      vec3 lin = vc * (gains.z + gains.x * dk + gains.y * df) + spec + rim * (0.35 + vc);
      gl_FragColor = vec4(srgb(lin), 1.0); }`;

  function rotation(pitch, yaw, roll) { // R = Ry(yaw) Rx(pitch) Rz(-roll), row-major, as painface.face.rig
    const r = Math.PI / 180, [p, y, z] = [pitch * r, yaw * r, -roll * r];
    const mul = (a, b) => a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
    const rx = [[1, 0, 0], [0, Math.cos(p), -Math.sin(p)], [0, Math.sin(p), Math.cos(p)]];
    const ry = [[Math.cos(y), 0, Math.sin(y)], [0, 1, 0], [-Math.sin(y), 0, Math.cos(y)]];
    const rz = [[Math.cos(z), -Math.sin(z), 0], [Math.sin(z), Math.cos(z), 0], [0, 0, 1]];
    return mul(mul(ry, rx), rz);
  }

  // Framing, fixed for every identity (metres, relative to the head joint): the view is centred on the face
  // (chin to hairline) and spans the whole head and the upper neck.
  const FRAME = { center: [0.0, 0.025, 0.02], height: 0.34, fov: 22 };
  const unit = (v) => { const l = Math.hypot(...v); return v.map((x) => x / l); };

  // A software rasterizer (SwiftShader in headless browsers, llvmpipe) pays 4-5x per frame for multisampling
  // (measured: 236 vs 52 ms per frame at 480 px): draw without it there.
  function softwareGl() {
    try {
      const gl = document.createElement("canvas").getContext("webgl");
      const ext = gl && gl.getExtension("WEBGL_debug_renderer_info");
      const name = ext ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : "";
      const lose = gl && gl.getExtension("WEBGL_lose_context");
      if (lose) lose.loseContext();
      return /swiftshader|llvmpipe|softpipe|software/i.test(name);
    } catch (e) { return false; }
  }

  class Face {
    constructor(canvas, mesh) {
      this.antialias = !softwareGl();
      const gl = canvas.getContext("webgl", { antialias: this.antialias, preserveDrawingBuffer: true });
      if (!gl) throw new Error("WebGL is not available in this browser");
      if (!gl.getExtension("OES_element_index_uint")) throw new Error("WebGL: 32-bit indices not supported");
      this.gl = gl; this.canvas = canvas; this.code = new Array(20).fill(0);
      const sh = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s);
        if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s)); return s; };
      const prog = gl.createProgram();
      gl.attachShader(prog, sh(gl.VERTEX_SHADER, VS)); gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, FS));
      gl.linkProgram(prog);
      if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
      gl.useProgram(prog); this.prog = prog;
      const u = (name) => gl.getUniformLocation(prog, name);
      gl.uniform3fv(u("keyDir"), unit(LIGHT.key_dir)); gl.uniform3fv(u("fillDir"), unit(LIGHT.fill_dir));
      gl.uniform4fv(u("gains"), [LIGHT.key, LIGHT.fill, LIGHT.ambient, 0]);
      gl.uniform4fv(u("shape"), [LIGHT.specular, LIGHT.shininess, LIGHT.wrap, LIGHT.rim]);
      const lin = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      gl.uniform3fv(u("interior"), LIGHT.interior.map(lin));
      this.uR = u("R"); this.uP = u("P"); this.uC = u("C");
      this.loc = { p: gl.getAttribLocation(prog, "p"), n: gl.getAttribLocation(prog, "n"), c: gl.getAttribLocation(prog, "c") };
      const f = 1 / Math.tan((FRAME.fov * Math.PI) / 180 / 2), dist = (FRAME.height / 2) * f;
      const near = dist / 10, far = dist * 10;
      this.center = [FRAME.center[0], FRAME.center[1], FRAME.center[2] + dist]; // camera on +z looking at -z
      this.proj = [f, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0];
      this.setMesh(mesh);
    }

    setMesh(mesh) { // a new head (another identity): new buffers, the same context and program
      const gl = this.gl;
      for (const b of [this.bp, this.bn, this.bc, this.bi]) if (b) gl.deleteBuffer(b);
      this.mesh = mesh;
      this.pos = new Float32Array(mesh.position.length); this.nrm = new Float32Array(mesh.position.length);
      const buf = (data, target = gl.ARRAY_BUFFER, usage = gl.STATIC_DRAW) => {
        const b = gl.createBuffer(); gl.bindBuffer(target, b); gl.bufferData(target, data, usage); return b; };
      this.bp = buf(this.pos, gl.ARRAY_BUFFER, gl.DYNAMIC_DRAW); this.bn = buf(this.nrm, gl.ARRAY_BUFFER, gl.DYNAMIC_DRAW);
      this.bc = buf(mesh.color); this.bi = buf(new Uint32Array(mesh.index), gl.ELEMENT_ARRAY_BUFFER);
      this.ni = mesh.index.length;
      this.draw(this.code);
    }

    draw(code) {
      const { gl, mesh, pos, nrm } = this;
      this.code = code;
      pos.set(mesh.position);
      const w = effectiveAus(code, mesh.names);
      for (let k = 0; k < mesh.targets.length; k++) {
        const wk = w[k] / 5;
        if (wk < 1e-4) continue;
        const t = mesh.targets[k];
        for (let i = 0; i < pos.length; i++) pos[i] += wk * t[i];
      }
      nrm.fill(0);
      const idx = mesh.index;
      for (let f = 0; f < idx.length; f += 3) {
        const a = idx[f] * 3, b = idx[f + 1] * 3, c = idx[f + 2] * 3;
        const ux = pos[b] - pos[a], uy = pos[b + 1] - pos[a + 1], uz = pos[b + 2] - pos[a + 2];
        const vx = pos[c] - pos[a], vy = pos[c + 1] - pos[a + 1], vz = pos[c + 2] - pos[a + 2];
        const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
        nrm[a] += nx; nrm[a + 1] += ny; nrm[a + 2] += nz;
        nrm[b] += nx; nrm[b + 1] += ny; nrm[b + 2] += nz;
        nrm[c] += nx; nrm[c + 1] += ny; nrm[c + 2] += nz;
      }
      const na = mesh.targets.length;
      const R = rotation(code[na] || 0, code[na + 1] || 0, code[na + 2] || 0);
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      const bg = LIGHT.background;
      gl.clearColor(bg[0], bg[1], bg[2], 1); gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      const attr = (loc, b, data) => { gl.bindBuffer(gl.ARRAY_BUFFER, b);
        if (data) gl.bufferSubData(gl.ARRAY_BUFFER, 0, data); gl.enableVertexAttribArray(loc);
        gl.vertexAttribPointer(loc, 3, gl.FLOAT, false, 0, 0); };
      attr(this.loc.p, this.bp, pos); attr(this.loc.n, this.bn, nrm); attr(this.loc.c, this.bc, null);
      gl.uniformMatrix3fv(this.uR, false, [0, 1, 2].flatMap((j) => [R[0][j], R[1][j], R[2][j]]));
      gl.uniformMatrix4fv(this.uP, false, this.proj);
      gl.uniform3fv(this.uC, this.center);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.bi);
      gl.drawElements(gl.TRIANGLES, this.ni, gl.UNSIGNED_INT, 0);
    }
  }

  // Load the head at `url` into `face` (an existing Face: its mesh is replaced) or a new Face on `canvas`.
  async function load(canvas, url = "/face.glb", face = null) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    const mesh = parseGlb(await res.arrayBuffer());
    if (face) { face.setMesh(mesh); return face; }
    return new Face(canvas, mesh);
  }
  return { load, parseGlb, rotation, effectiveAus, FRAME, LIGHT };
})();
