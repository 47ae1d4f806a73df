// Draw-a-digit: the drawing becomes a 28x28 MNIST-style input, sent to TF Serving's predict API
// ("on the server") or run by onnxruntime-web on the served version's ONNX file ("in this browser").
"use strict";

const MODEL = document.querySelector('meta[name="model-name"]').content;
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen");
const STROKE = 22;  // on the 280px pad: about 2 px at MNIST's 20px digit height

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  seen.getContext("2d").clearRect(0, 0, 28, 28);
  showPrediction(null);
  lastImage = null;
  pending++;  // an answer still on its way is for the drawing just cleared: dropped
  pad.dataset.answers = "0";
}

// Drawing with pointer events (mouse, pen and touch alike).
let drawing = false;
function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = padPoint(event);
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = STROKE;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.arc(x, y, STROKE / 2, 0, 2 * Math.PI);
  ctx.fill();
  ctx.beginPath();
  ctx.moveTo(x, y);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = padPoint(event);
  ctx.lineTo(x, y);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x, y);
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  classify();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

// The pad (white on black, intensity in the red channel) as MNIST's 28x28: the ink's bounding
// box scaled by area averaging into 20x20 (aspect kept), then placed so that its centre of
// mass is the centre of the 28x28 field. Returns null for an empty pad.
function mnistInput() {
  const w = pad.width, h = pad.height;
  const data = ctx.getImageData(0, 0, w, h).data;
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[(y * w + x) * 4] > 25) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const tw = Math.max(1, Math.round(bw * scale)), th = Math.max(1, Math.round(bh * scale));
  const sum = new Float32Array(tw * th), count = new Float32Array(tw * th);
  for (let y = y0; y <= y1; y++) {
    const ty = Math.min(th - 1, Math.floor((y - y0) * th / bh));
    for (let x = x0; x <= x1; x++) {
      const tx = Math.min(tw - 1, Math.floor((x - x0) * tw / bw));
      sum[ty * tw + tx] += data[(y * w + x) * 4] / 255;
      count[ty * tw + tx] += 1;
    }
  }
  let mass = 0, mx = 0, my = 0;
  for (let i = 0; i < tw * th; i++) {
    sum[i] = count[i] ? sum[i] / count[i] : 0;
    mass += sum[i]; mx += sum[i] * (i % tw); my += sum[i] * Math.floor(i / tw);
  }
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  const ox = clamp(Math.round(13.5 - mx / mass), 28 - tw);
  const oy = clamp(Math.round(13.5 - my / mass), 28 - th);
  const image = [];
  for (let y = 0; y < 28; y++) image.push(new Array(28).fill(0));
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      image[oy + y][ox + x] = Math.round(Math.min(1, sum[y * tw + x]) * 1000) / 1000;
    }
  }
  return image;
}

function showSeen(image) {
  const c = seen.getContext("2d");
  const pixels = c.createImageData(28, 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = Math.round(image[y][x] * 255), i = (y * 28 + x) * 4;
      pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = v;
      pixels.data[i + 3] = 255;
    }
  }
  c.putImageData(pixels, 0, 0);
}

const bars = document.getElementById("bars");
for (let d = 0; d < 10; d++) {
  bars.insertAdjacentHTML("beforeend", `<div class="bar" id="bar-${d}"><span class="digit">${d}` +
    `</span><span class="track"><span class="fill"></span></span><span class="value"></span></div>`);
}

function showPrediction(probabilities) {
  const label = document.getElementById("prediction");
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  for (let d = 0; d < 10; d++) {
    const bar = document.getElementById(`bar-${d}`);
    const p = probabilities ? probabilities[d] : 0;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = probabilities ? `${(100 * p).toFixed(1)}%` : "";
    bar.classList.toggle("top", d === top);
  }
  label.textContent = top >= 0 ? `${top} (${(100 * probabilities[top]).toFixed(1)}%)` : "–";
  label.dataset.digit = top >= 0 ? String(top) : "";
  document.getElementById("error").textContent = "";
}

// "in this browser": onnxruntime-web (bundled in /static/ort/) on /model.onnx, the ONNX file
// exported beside the served version; one thread, as a page that is not cross-origin isolated
// gets no SharedArrayBuffer.
let onnxSession = null, onnxVersion = null;
function where() {
  return document.querySelector('input[name="where"]:checked').value;
}

// The session of the version the server serves now (a new version is fetched once, as the
// server swaps it in).
async function browserSession() {
  const head = await fetch("/model.onnx", {method: "HEAD"});
  if (!head.ok) throw new Error("the served version has no ONNX file");
  const version = head.headers.get("x-model-version");
  if (!onnxSession || version !== onnxVersion) {
    ort.env.wasm.wasmPaths = "/static/ort/";
    ort.env.wasm.numThreads = 1;
    onnxVersion = version;
    onnxSession = ort.InferenceSession.create("/model.onnx", {executionProviders: ["wasm"]});
  }
  return onnxSession;
}

async function browserPredict(image) {
  const session = await browserSession();
  const input = new ort.Tensor("float32", Float32Array.from(image.flat()), [1, 28, 28]);
  const outputs = await session.run({[session.inputNames[0]]: input});
  return Array.from(outputs.probabilities.data);
}

async function serverPredict(image) {
  const response = await fetch(`/v1/models/${encodeURIComponent(MODEL)}:predict`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({instances: [image]}),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body.predictions[0].probabilities;
}

let pending = 0;
let lastImage = null;
async function classify() {
  const image = mnistInput();
  lastImage = image;
  if (!image) { showPrediction(null); return; }
  showSeen(image);
  const ticket = ++pending;
  const mode = where();
  try {
    const probabilities = await (mode === "browser" ? browserPredict(image) : serverPredict(image));
    if (ticket !== pending) return;  // a newer stroke has asked again
    showPrediction(probabilities);
    window.lastProbabilities = probabilities;  // for tests: the two modes agree
    pad.dataset.where = mode;
    pad.dataset.answers = String(Number(pad.dataset.answers || 0) + 1);  // for tests
  } catch (error) {
    if (ticket === pending) document.getElementById("error").textContent = `error: ${error.message}`;
  }
}

// The toggle: on when onnxruntime-web is bundled and the served version has an ONNX file.
async function setUpWhere() {
  const note = document.getElementById("where-note");
  const browser = document.querySelector('input[name="where"][value="browser"]');
  if (typeof ort === "undefined") {
    note.textContent = "onnxruntime-web is not bundled: `make install` (with npm) copies it in";
    return;
  }
  try {
    const response = await fetch("/model.onnx", {method: "HEAD"});
    if (!response.ok) {
      note.textContent = "the served version has no ONNX file: export it with " +
        "--export_format=saved_model,onnx";
      return;
    }
    const size = Number(response.headers.get("content-length") || 0);
    browser.disabled = false;
    note.textContent = `in this browser: onnxruntime-web on model.onnx (${(size / 1e6).toFixed(1)} MB` +
      `, version ${response.headers.get("x-model-version")})`;
  } catch (error) {
    note.textContent = `no ONNX model: ${error.message}`;
  }
}
for (const radio of document.querySelectorAll('input[name="where"]')) {
  radio.addEventListener("change", () => { if (lastImage) classify(); });
}

// A photo: fit it on the pad as grey levels, make the ink light on dark (invert when the
// border is light, i.e. dark ink on paper), stretch ink to 0..1 and drop the paper's noise.
function loadPhoto(file) {
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    URL.revokeObjectURL(url);
    clearPad();
    const scale = Math.min(pad.width / img.width, pad.height / img.height);
    const w = Math.round(img.width * scale), h = Math.round(img.height * scale);
    const x = Math.floor((pad.width - w) / 2), y = Math.floor((pad.height - h) / 2);
    ctx.drawImage(img, x, y, w, h);
    const frame = ctx.getImageData(x, y, w, h), d = frame.data;
    const grey = new Float32Array(w * h);
    let border = 0, borderCount = 0;
    for (let i = 0; i < w * h; i++) {
      grey[i] = (0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]) / 255;
      const px = i % w, py = Math.floor(i / w);
      if (px < 2 || py < 2 || px >= w - 2 || py >= h - 2) { border += grey[i]; borderCount++; }
    }
    const invert = border / borderCount > 0.5;
    const ink = Array.from(grey, (g) => (invert ? 1 - g : g));
    const sorted = [...ink].sort((a, b) => a - b);
    const paper = sorted[Math.floor(sorted.length * 0.5)], peak = sorted[sorted.length - 1];
    for (let i = 0; i < w * h; i++) {
      let v = (ink[i] - paper) / Math.max(1e-3, peak - paper);
      v = v < 0.25 ? 0 : Math.min(1, v);
      d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = Math.round(v * 255);
      d[4 * i + 3] = 255;
    }
    ctx.putImageData(frame, x, y);
    classify();
  };
  img.onerror = () => {
    document.getElementById("error").textContent = "error: that file is not an image";
  };
  img.src = url;
}

async function showModelStatus() {
  const line = document.getElementById("model-status");
  try {
    const response = await fetch(`/v1/models/${encodeURIComponent(MODEL)}`);
    const body = await response.json();
    const versions = (body.model_version_status || []).map((v) => `${v.version} ${v.state}`);
    line.textContent = response.ok ? `model "${MODEL}", version ${versions.join(", ")}`
                                   : `model "${MODEL}": ${body.error}`;
  } catch (error) {
    line.textContent = `model "${MODEL}": ${error.message}`;
  }
}

document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", (event) => {
  if (event.target.files.length) loadPhoto(event.target.files[0]);
  event.target.value = "";
});
clearPad();
showModelStatus();
setUpWhere();
