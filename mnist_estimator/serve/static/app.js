// Draw-a-digit (or, for an RGB model, a photo): the model's input, sent to TF Serving's predict
// API ("on the server") or run by onnxruntime-web on the served version's ONNX file ("in this browser").
// With several models served, a picker switches among them (?model=NAME keeps the choice).
"use strict";

const DEFAULT_MODEL = document.querySelector('meta[name="model-name"]').content;
let MODEL = DEFAULT_MODEL;  // the picked model: its input, class names, REST path and ONNX file
const onnxUrl = (name) => `/model.onnx?name=${encodeURIComponent(name)}`;
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen");
const STROKE = 22;  // on the 280px pad: about 2 px at MNIST's 20px digit height

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
  photoBox = null;
  showPrediction(null);
  lastImage = null;
  pending++;  // an answer still on its way is for the drawing just cleared: dropped
  pad.dataset.answers = "0";
}

// Drawing with pointer events (mouse, pen and touch alike); one pointer at a time (a second
// finger neither draws nor ends the stroke). touch-action: none keeps the page from scrolling.
let drawing = false, strokePointer = null;
function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", (event) => {
  if (isPhotoModel() || drawing) return;  // an RGB model takes photos, not drawings
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();  // no text selection, no emulated mouse events after a touch
  drawing = true;
  strokePointer = event.pointerId;
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
  if (!drawing || event.pointerId !== strokePointer) return;
  const [x, y] = padPoint(event);
  ctx.lineTo(x, y);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x, y);
});
function endStroke(event) {
  if (!drawing || event.pointerId !== strokePointer) return;
  drawing = false;
  strokePointer = null;
  classify();
}
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  pad.addEventListener(type, endStroke);
}

// The served model's input: [H, W, C] and its class names, from /page/model at start and
// whenever a version is swapped in (the status line polls it). MNIST's until then.
let MODEL_INFO = {input_shape: [28, 28, 1], class_names: [...Array(10).keys()].map(String)};
const isPhotoModel = () => MODEL_INFO.input_shape[2] === 3;

// The pad (white on black, intensity in the red channel) as an MNIST-style H x W: the ink's
// bounding box scaled by area averaging into 20/28 of the field (aspect kept), then placed so
// that its centre of mass is the field's centre. Returns null for an empty pad.
function mnistInput() {
  const [H, W] = MODEL_INFO.input_shape;
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
  const scale = Math.min(H, W) * 20 / 28 / Math.max(bw, bh);
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
  const ox = clamp(Math.round((W - 1) / 2 - mx / mass), W - tw);
  const oy = clamp(Math.round((H - 1) / 2 - my / mass), H - th);
  const image = [];
  for (let y = 0; y < H; y++) image.push(new Array(W).fill(0));
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      image[oy + y][ox + x] = Math.round(Math.min(1, sum[y * tw + x]) * 1000) / 1000;
    }
  }
  return image;
}

// An RGB model's input: the pad's photo (drawn there by loadPhoto), centre-cropped to the
// model's aspect and scaled to H x W by the canvas, as [H][W][3] in 0..1.
let photoBox = null;  // where loadPhoto drew the photo on the pad
function photoInput() {
  if (!photoBox) return null;
  const [H, W] = MODEL_INFO.input_shape;
  const {x, y, w, h} = photoBox;
  const crop = Math.min(w / W, h / H);
  const small = document.createElement("canvas");
  small.width = W; small.height = H;
  const sctx = small.getContext("2d");
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(pad, x + (w - W * crop) / 2, y + (h - H * crop) / 2, W * crop, H * crop,
                 0, 0, W, H);
  const d = sctx.getImageData(0, 0, W, H).data, image = [];
  for (let r = 0; r < H; r++) {
    const row = [];
    for (let c = 0; c < W; c++) {
      const i = (r * W + c) * 4;
      row.push([d[i], d[i + 1], d[i + 2]].map((v) => Math.round(v / 255 * 1000) / 1000));
    }
    image.push(row);
  }
  return image;
}

function showSeen(image) {
  const H = image.length, W = image[0].length;
  seen.width = W; seen.height = H;
  const c = seen.getContext("2d");
  const pixels = c.createImageData(W, H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const v = image[y][x], i = (y * W + x) * 4;
      const [r, g, b] = Array.isArray(v) ? v : [v, v, v];
      pixels.data[i] = Math.round(r * 255);
      pixels.data[i + 1] = Math.round(g * 255);
      pixels.data[i + 2] = Math.round(b * 255);
      pixels.data[i + 3] = 255;
    }
  }
  c.putImageData(pixels, 0, 0);
}

const bars = document.getElementById("bars");
function buildBars() {
  bars.textContent = "";
  MODEL_INFO.class_names.forEach((name, k) => {
    const bar = document.createElement("div");
    bar.className = "bar"; bar.id = `bar-${k}`;
    bar.innerHTML = '<span class="digit"></span><span class="track"><span class="fill"></span>' +
      '</span><span class="value"></span>';
    bar.querySelector(".digit").textContent = name;  // a folder's name: text, never HTML
    bars.appendChild(bar);
  });
}

// data-digit is the class index, data-class its name (what tests and scripts read).
function showPrediction(probabilities) {
  const label = document.getElementById("prediction");
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  MODEL_INFO.class_names.forEach((_, k) => {
    const bar = document.getElementById(`bar-${k}`);
    const p = probabilities ? probabilities[k] : 0;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = probabilities ? `${(100 * p).toFixed(1)}%` : "";
    bar.classList.toggle("top", k === top);
  });
  const name = top >= 0 ? MODEL_INFO.class_names[top] : "";
  label.textContent = top >= 0 ? `${name} (${(100 * probabilities[top]).toFixed(1)}%)` : "–";
  label.dataset.digit = top >= 0 ? String(top) : "";
  label.dataset.class = name;
  if (top < 0) delete label.dataset.model;
  document.getElementById("error").textContent = "";
}

// "in this browser": onnxruntime-web (bundled in /static/ort/) on /model.onnx, the ONNX file
// exported beside the served version; one thread, as a page that is not cross-origin isolated
// gets no SharedArrayBuffer.
let onnxSession = null, onnxKey = null;
function where() {
  return document.querySelector('input[name="where"]:checked').value;
}

// The session of the picked model's version the server serves now (a new version, or another
// model, is fetched once, as the server swaps it in or the picker switches).
async function browserSession(name) {
  const head = await fetch(onnxUrl(name), {method: "HEAD"});
  if (!head.ok) throw new Error(`model "${name}": the served version has no ONNX file`);
  const key = `${name}\n${head.headers.get("x-model-version")}`;
  if (!onnxSession || key !== onnxKey) {
    ort.env.wasm.wasmPaths = "/static/ort/";
    ort.env.wasm.numThreads = 1;
    onnxKey = key;
    onnxSession = ort.InferenceSession.create(onnxUrl(name), {executionProviders: ["wasm"]});
  }
  return onnxSession;
}

async function browserPredict(image, name) {
  const session = await browserSession(name);
  const [H, W, C] = MODEL_INFO.input_shape;  // the export's own: [n, H, W] grey, [n, H, W, 3] RGB
  const input = new ort.Tensor("float32", Float32Array.from(image.flat(2)),
                               C === 3 ? [1, H, W, 3] : [1, H, W]);
  const outputs = await session.run({[session.inputNames[0]]: input});
  return Array.from(outputs.probabilities.data);
}

async function serverPredict(image, name) {
  const response = await fetch(`/v1/models/${encodeURIComponent(name)}:predict`, {
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
  const image = isPhotoModel() ? photoInput() : mnistInput();
  lastImage = image;
  if (!image) { showPrediction(null); return; }
  showSeen(image);
  const ticket = ++pending;
  const mode = where(), name = MODEL;
  try {
    const probabilities = await (mode === "browser" ? browserPredict(image, name)
                                                    : serverPredict(image, name));
    if (ticket !== pending) return;  // a newer stroke (or another model) has asked again
    showPrediction(probabilities);
    document.getElementById("prediction").dataset.model = name;  // whose answer it is
    window.lastProbabilities = probabilities;  // for tests: the two modes agree
    pad.dataset.where = mode;
    pad.dataset.answers = String(Number(pad.dataset.answers || 0) + 1);  // for tests
  } catch (error) {
    if (ticket === pending) document.getElementById("error").textContent = `error: ${error.message}`;
  }
}

// The toggle: on when onnxruntime-web is bundled and the picked model's served version has an
// ONNX file; off (back to the server) for a model without one.
async function setUpWhere() {
  const name = MODEL;
  const note = document.getElementById("where-note");
  const browser = document.querySelector('input[name="where"][value="browser"]');
  const off = (text) => {
    if (name !== MODEL) return;  // the picker has moved on
    if (browser.checked) document.querySelector('input[name="where"][value="server"]').checked = true;
    browser.disabled = true;
    note.textContent = text;
  };
  if (typeof ort === "undefined") {
    off("onnxruntime-web is not bundled: `make install` (with npm) copies it in");
    return;
  }
  try {
    const response = await fetch(onnxUrl(name), {method: "HEAD"});
    if (name !== MODEL) return;
    if (!response.ok) {
      off("the served version has no ONNX file: export it with --export_format=saved_model,onnx");
      return;
    }
    const size = Number(response.headers.get("content-length") || 0);
    browser.disabled = false;
    note.textContent = `in this browser: onnxruntime-web on model.onnx (${(size / 1e6).toFixed(1)} MB` +
      `, version ${response.headers.get("x-model-version")})`;
  } catch (error) {
    off(`no ONNX model: ${error.message}`);
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
    if (isPhotoModel()) {  // as it is: the model was trained on photos like it
      photoBox = {x, y, w, h};
      classify();
      return;
    }
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

// The page's model: input shape and class names. A new shape or new names (another version
// swapped in) rebuild the bars and switch between drawing and photo mode.
async function loadModelInfo() {
  const name = MODEL;
  const response = await fetch(`/page/model?name=${encodeURIComponent(name)}`);
  const info = await response.json();
  if (!response.ok) throw new Error(info.error || response.statusText);
  if (name !== MODEL) return;  // the picker has moved on
  const changed = JSON.stringify(info.input_shape) !== JSON.stringify(MODEL_INFO.input_shape) ||
    JSON.stringify(info.class_names) !== JSON.stringify(MODEL_INFO.class_names);
  MODEL_INFO = info;
  if (changed || !bars.children.length) {
    const [H, W, C] = info.input_shape;
    document.body.classList.toggle("photo-mode", C === 3);
    document.getElementById("title").textContent = C === 3 ? "Classify a photo" : "Draw a digit";
    document.getElementById("hint").textContent = C === 3
      ? `Choose a photo; it is centre-cropped to ${H}x${W} RGB, as the model was trained.`
      : "Draw with the mouse or a finger; each stroke asks the model again.";
    document.getElementById("seen-hint").textContent = C === 3
      ? `The photo at the model's ${H}x${W}.`
      : `Fitted into ${Math.round(Math.min(H, W) * 20 / 28)}px and centred by centre of mass ` +
        `in ${H}x${W}, as MNIST was made.`;
    buildBars();
    clearPad();
  }
}

async function showModelStatus() {
  const line = document.getElementById("model-status");
  const name = MODEL;
  try {
    await loadModelInfo();
    const response = await fetch(`/v1/models/${encodeURIComponent(name)}`);
    const body = await response.json();
    if (name !== MODEL) return;  // the picker has moved on
    const versions = (body.model_version_status || []).map((v) => `${v.version} ${v.state}`);
    const [H, W, C] = MODEL_INFO.input_shape;
    line.textContent = response.ok
      ? `model "${MODEL}", version ${versions.join(", ")}; ${H}x${W} ${C === 3 ? "RGB" : "grey"}, ` +
        `${MODEL_INFO.class_names.length} classes`
      : `model "${MODEL}": ${body.error}`;
  } catch (error) {
    if (name === MODEL) line.textContent = `model "${name}": ${error.message}`;
  }
}

// The picker: the models with a version served now (/page/models), the server's default first
// picked (or the page URL's ?model=NAME); hidden when there is one.
const picker = document.getElementById("model");
async function setUpPicker() {
  let listed;
  try {
    const response = await fetch("/page/models");
    if (!response.ok) return;
    listed = await response.json();
  } catch (error) {
    return;  // a server without the list: its one model
  }
  const names = listed.models.map((m) => m.name);
  picker.textContent = "";
  for (const name of names) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;  // a model's name: text, never HTML
    picker.appendChild(option);
  }
  const asked = new URLSearchParams(location.search).get("model");
  MODEL = [asked, MODEL, listed.default].find((n) => names.includes(n)) || MODEL;
  picker.value = MODEL;
  document.getElementById("model-picker").hidden = names.length < 2;
}

// Another model: its input and classes (new ones rebuild the page and clear the pad), its ONNX
// file, and the drawing still on the pad asked of it.
async function pickModel(name) {
  MODEL = name;
  pending++;  // an answer still on its way is the other model's: dropped
  showPrediction(null);
  const url = new URL(location.href);
  url.searchParams.set("model", name);
  history.replaceState(null, "", url);
  document.getElementById("model-status").textContent = `loading model "${name}"…`;
  document.getElementById("where-note").textContent = "looking for the ONNX model…";
  await Promise.all([showModelStatus(), setUpWhere()]);
  if (name === MODEL && lastImage) classify();
}
picker.addEventListener("change", () => pickModel(picker.value));

document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", (event) => {
  if (event.target.files.length) loadPhoto(event.target.files[0]);
  event.target.value = "";
});
buildBars();
clearPad();
setUpPicker().then(() => { showModelStatus(); setUpWhere(); });
