// painface face renderer: loads /face.glb once (mesh, vertex colours, one morph target per AU at
// intensity 5) and draws a FACS face code [17 AUs (0-5), head pitch, yaw, roll (degrees)] with WebGL.
"use strict";
const PainFace = (() => {
  function parseGlb(buf) {
    const dv = new DataView(buf);
    if (dv.getUint32(0, true) !== 0x46546C67) throw new Error("face.glb: not a glTF binary");
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

  const VS = `attribute vec3 p; attribute vec3 n; attribute vec3 c; uniform mat3 R; uniform mat4 P; uniform vec3 C;
    varying vec3 vn; varying vec3 vc;
    void main() { vec3 q = R * p - C; vn = R * n; vc = c; gl_Position = P * vec4(q, 1.0); }`;
  const FS = `precision mediump float; varying vec3 vn; varying vec3 vc;
    void main() { vec3 l = normalize(vec3(-0.35, 0.45, 1.0)); vec3 nn = normalize(vn);
      float d = abs(dot(nn, l)); vec3 lin = vc * (0.28 + 0.8 * d);
      gl_FragColor = vec4(pow(clamp(lin, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0); }`;

  function rotation(pitch, yaw, roll) { // R = Ry(yaw) Rx(pitch) Rz(-roll), row-major, as painface.face.rig
    const r = Math.PI / 180, [p, y, z] = [pitch * r, yaw * r, -roll * r];
    const mul = (a, b) => a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
    const rx = [[1, 0, 0], [0, Math.cos(p), -Math.sin(p)], [0, Math.sin(p), Math.cos(p)]];
    const ry = [[Math.cos(y), 0, Math.sin(y)], [0, 1, 0], [-Math.sin(y), 0, Math.cos(y)]];
    const rz = [[Math.cos(z), -Math.sin(z), 0], [Math.sin(z), Math.cos(z), 0], [0, 0, 1]];
    return mul(mul(ry, rx), rz);
  }

  class Face {
    constructor(canvas, mesh) {
      const gl = canvas.getContext("webgl", { antialias: true, preserveDrawingBuffer: true });
      if (!gl) throw new Error("WebGL is not available in this browser");
      this.gl = gl; this.mesh = mesh; this.canvas = canvas;
      const nv = mesh.position.length / 3;
      this.pos = new Float32Array(mesh.position.length); this.nrm = new Float32Array(mesh.position.length);
      const sh = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s);
        if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s)); return s; };
      const prog = gl.createProgram();
      gl.attachShader(prog, sh(gl.VERTEX_SHADER, VS)); gl.attachShader(prog, sh(gl.FRAGMENT_SHADER, FS));
      gl.linkProgram(prog); gl.useProgram(prog); this.prog = prog;
      this.ext = gl.getExtension("OES_element_index_uint");
      const buf = (data, target = gl.ARRAY_BUFFER, usage = gl.STATIC_DRAW) => {
        const b = gl.createBuffer(); gl.bindBuffer(target, b); gl.bufferData(target, data, usage); return b; };
      this.bp = buf(this.pos, gl.ARRAY_BUFFER, gl.DYNAMIC_DRAW); this.bn = buf(this.nrm, gl.ARRAY_BUFFER, gl.DYNAMIC_DRAW);
      this.bc = buf(mesh.color); this.bi = buf(new Uint32Array(mesh.index), gl.ELEMENT_ARRAY_BUFFER);
      this.nv = nv; this.ni = mesh.index.length;
      const [lo, hi] = [mesh.min, mesh.max];
      this.center = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2 + 0.005, (lo[2] + hi[2]) / 2];
      const size = Math.max(hi[0] - lo[0], hi[1] - lo[1]) * 1.25, f = 1 / Math.tan((22 * Math.PI) / 180 / 2);
      const dist = size / 2 * f, near = dist / 10, far = dist * 10;
      this.center[2] += dist; // camera on +z looking at -z: shift the scene back by dist
      this.proj = [f, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1, 0, 0, (2 * far * near) / (near - far), 0];
      this.draw(new Array(20).fill(0));
    }

    draw(code) {
      const { gl, mesh, pos, nrm } = this;
      pos.set(mesh.position);
      for (let k = 0; k < mesh.targets.length; k++) {
        const w = Math.min(Math.max(code[k] || 0, 0), 5) / 5;
        if (w < 1e-4) continue;
        const t = mesh.targets[k];
        for (let i = 0; i < pos.length; i++) pos[i] += w * t[i];
      }
      nrm.fill(0);
      const idx = mesh.index;
      for (let f = 0; f < idx.length; f += 3) {
        const a = idx[f] * 3, b = idx[f + 1] * 3, c = idx[f + 2] * 3;
        const ux = pos[b] - pos[a], uy = pos[b + 1] - pos[a + 1], uz = pos[b + 2] - pos[a + 2];
        const vx = pos[c] - pos[a], vy = pos[c + 1] - pos[a + 1], vz = pos[c + 2] - pos[a + 2];
        const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
        for (const v of [a, b, c]) { nrm[v] += nx; nrm[v + 1] += ny; nrm[v + 2] += nz; }
      }
      const R = rotation(code[17] || 0, code[18] || 0, code[19] || 0);
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      gl.clearColor(0.87, 0.89, 0.92, 1); gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      const attr = (name, b, data) => { const loc = gl.getAttribLocation(this.prog, name); gl.bindBuffer(gl.ARRAY_BUFFER, b);
        if (data) gl.bufferSubData(gl.ARRAY_BUFFER, 0, data); gl.enableVertexAttribArray(loc);
        gl.vertexAttribPointer(loc, 3, gl.FLOAT, false, 0, 0); };
      attr("p", this.bp, pos); attr("n", this.bn, nrm); attr("c", this.bc, null);
      gl.uniformMatrix3fv(gl.getUniformLocation(this.prog, "R"), false, [0, 1, 2].flatMap((j) => [R[0][j], R[1][j], R[2][j]]));
      gl.uniformMatrix4fv(gl.getUniformLocation(this.prog, "P"), false, this.proj);
      gl.uniform3fv(gl.getUniformLocation(this.prog, "C"), this.center);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.bi);
      gl.drawElements(gl.TRIANGLES, this.ni, gl.UNSIGNED_INT, 0);
    }
  }

  async function load(canvas, url = "/face.glb") {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return new Face(canvas, parseGlb(await res.arrayBuffer()));
  }
  return { load, parseGlb, rotation };
})();
