// The aevb explorer's page: plain JavaScript over the JSON API of aevb.serve.app.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_SLIDERS = 10; // sliders shown at first: the dimensions ranked highest
const SLIDER_RANGE = 3.5; // prior standard deviations either side of 0
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

const state = {
  info: null,
  z: [], // the code the sliders show, one value per latent dimension
  shown: [], // the dimensions with a slider, in ranking order
  label: null, // the class of a conditional model
  ends: [], // the last two codes clicked: the interpolation's ends
  map: null, // the manifold or projection drawn on the canvas
};

function say(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.className = error ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) { /* not JSON: keep the status text */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

const postJSON = (path, body) => api(path, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

// -- decoding the sliders' code: one request at a time, then the latest code -------------

let decoding = false;
let pending = false;

async function decode() {
  if (decoding) {
    pending = true;
    return;
  }
  decoding = true;
  try {
    do {
      pending = false;
      const response = await postJSON("/api/decode", { z: state.z, label: state.label });
      const img = $("decoded");
      const old = img.src;
      img.src = URL.createObjectURL(await response.blob());
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    } while (pending);
  } catch (e) {
    say(e.message, true);
  } finally {
    decoding = false;
  }
}

function setCode(z) {
  state.z = z.slice();
  for (const input of document.querySelectorAll("#sliders input")) showValue(input);
  drawMap();
  decode();
}

function showValue(input) {
  const value = state.z[Number(input.dataset.dim)];
  input.value = value;
  input.nextElementSibling.textContent = value.toFixed(2);
}

function renderSliders() {
  const rows = state.shown.map((dim) => {
    const row = document.createElement("label");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = `z[${dim}]`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -SLIDER_RANGE, max: SLIDER_RANGE, step: 0.01 });
    input.dataset.dim = dim;
    input.addEventListener("input", () => {
      state.z[dim] = Number(input.value);
      input.nextElementSibling.textContent = state.z[dim].toFixed(2);
      drawMap();
      decode();
    });
    row.append(name, input, document.createElement("output"));
    return row;
  });
  $("sliders").replaceChildren(...rows);
  for (const input of document.querySelectorAll("#sliders input")) showValue(input);
}

function setUpDimensions(info) {
  const picker = $("dims");
  const ranked = info.dims.map((d) => d.dim);
  picker.replaceChildren(...info.dims.map((d, i) => {
    const option = new Option(`z[${d.dim}]  ${d.value.toFixed(3)}`, d.dim);
    option.selected = i < MAX_SLIDERS;
    return option;
  }));
  picker.addEventListener("change", () => {
    const chosen = new Set(Array.from(picker.selectedOptions, (o) => Number(o.value)));
    state.shown = ranked.filter((d) => chosen.has(d));
    renderSliders();
  });
  state.shown = ranked.slice(0, MAX_SLIDERS);
  $("ranked-by").textContent = `ranked by ${info.ranked_by}`;
  renderSliders();
}

// -- the map: a 2-D manifold, or the projection of encoded data ---------------------------

// value at fractional index c of an ascending array, linear between (and beyond) entries
function along(values, c) {
  const i = Math.min(Math.max(Math.floor(c), 0), values.length - 2);
  return values[i] + (c - i) * (values[i + 1] - values[i]);
}

function indexOf(values, v) { // the inverse of along
  let i = 0;
  while (i < values.length - 2 && v > values[i + 1]) i += 1;
  return i + (v - values[i]) / (values[i + 1] - values[i]);
}

async function loadMap() {
  const info = state.info;
  if (!info.map) return;
  $("map-box").hidden = false;
  if (info.map === "manifold") {
    const query = state.label === null ? "" : `?label=${state.label}`;
    const m = await (await api(`/api/manifold${query}`)).json();
    const image = new Image();
    await new Promise((resolve) => { image.onload = resolve; image.src = m.image; });
    state.map = { kind: "manifold", image, values: m.values, tile: m.image_shape };
    $("map-caption").textContent = "the decoder over the latent plane z[0] (across), " +
      "z[1] (up): click to decode a point";
  } else {
    const p = await (await api("/api/projection")).json();
    const xs = p.points.map((q) => q[0]);
    const ys = p.points.map((q) => q[1]);
    const pad = (lo, hi) => [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)];
    state.map = {
      kind: "projection", ...p,
      xr: pad(Math.min(...xs), Math.max(...xs)), yr: pad(Math.min(...ys), Math.max(...ys)),
    };
    const explained = p.explained.map((v) => `${(100 * v).toFixed(0)}%`).join(" + ");
    $("map-caption").textContent = `${p.about} (${explained} of their variance); ` +
      "click to decode a point of the plane";
    if (p.labels) {
      const labels = [...new Set(p.labels)].sort((a, b) => a - b);
      $("legend").innerHTML = labels.map((l) =>
        `<span><i style="background:${COLOURS[l % 10]}"></i>${l}</span>`).join("");
    }
  }
  drawMap();
}

// canvas pixel <-> code, for the map in use
function codeAt(x, y) {
  const m = state.map;
  const canvas = $("map");
  if (m.kind === "manifold") {
    const [h, w] = m.tile;
    const n = m.values.length;
    const gx = (x * (n * (w + 1) - 1)) / canvas.width;
    const gy = (y * (n * (h + 1) - 1)) / canvas.height;
    const column = (gx - (w - 1) / 2) / (w + 1);
    const row = (gy - (h - 1) / 2) / (h + 1);
    return [along(m.values, column), along(m.values, n - 1 - row)];
  }
  const px = m.xr[0] + (x / canvas.width) * (m.xr[1] - m.xr[0]);
  const py = m.yr[1] - (y / canvas.height) * (m.yr[1] - m.yr[0]);
  return m.mean.map((mu, d) => mu + px * m.components[0][d] + py * m.components[1][d]);
}

function pixelOf(z) {
  const m = state.map;
  const canvas = $("map");
  if (m.kind === "manifold") {
    const [h, w] = m.tile;
    const n = m.values.length;
    const gx = indexOf(m.values, z[0]) * (w + 1) + (w - 1) / 2;
    const gy = (n - 1 - indexOf(m.values, z[1])) * (h + 1) + (h - 1) / 2;
    return [(gx * canvas.width) / (n * (w + 1) - 1), (gy * canvas.height) / (n * (h + 1) - 1)];
  }
  const dot = (row) => row.reduce((s, c, d) => s + c * (z[d] - m.mean[d]), 0);
  return planeToPixel(dot(m.components[0]), dot(m.components[1]));
}

function planeToPixel(x, y) { // a point of the projection's plane -> canvas pixel
  const m = state.map;
  const canvas = $("map");
  return [
    ((x - m.xr[0]) / (m.xr[1] - m.xr[0])) * canvas.width,
    ((m.yr[1] - y) / (m.yr[1] - m.yr[0])) * canvas.height,
  ];
}

function drawMap() {
  const m = state.map;
  if (!m) return;
  const canvas = $("map");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (m.kind === "manifold") {
    g.imageSmoothingEnabled = false;
    g.drawImage(m.image, 0, 0, canvas.width, canvas.height);
  } else {
    m.points.forEach(([x, y], i) => {
      g.fillStyle = m.labels ? COLOURS[m.labels[i] % 10] : "#555";
      const [px, py] = planeToPixel(x, y);
      g.fillRect(px - 1.5, py - 1.5, 3, 3);
    });
  }
  const [cx, cy] = pixelOf(state.z);
  g.strokeStyle = "#e00";
  g.lineWidth = 2;
  g.beginPath();
  g.arc(cx, cy, 7, 0, 2 * Math.PI);
  g.moveTo(cx - 12, cy); g.lineTo(cx + 12, cy);
  g.moveTo(cx, cy - 12); g.lineTo(cx, cy + 12);
  g.stroke();
}

$("map").addEventListener("click", (event) => {
  if (!state.map) return;
  const box = event.target.getBoundingClientRect();
  const scale = event.target.width / box.width;
  setCode(codeAt((event.clientX - box.left) * scale, (event.clientY - box.top) * scale));
});

// -- samples, interpolation, uploads ------------------------------------------------------

function pick(z, src) {
  state.ends = [state.ends[state.ends.length - 1], { z, src }].filter(Boolean);
  $("end-a").src = state.ends[0].src;
  if (state.ends.length > 1) $("end-b").src = state.ends[1].src;
  setCode(z);
}

function thumbnail(src, z) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.src = src;
  if (z) img.addEventListener("click", () => pick(z, src));
  return img;
}

$("sample-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const body = {
      n: Number($("n").value), temperature: Number($("temperature").value),
      seed: Number($("seed").value), label: state.label,
    };
    const result = await (await postJSON("/api/sample", body)).json();
    $("samples").replaceChildren(...result.samples.map((s) => thumbnail(s.image, s.z)));
    say("");
  } catch (e) {
    say(e.message, true);
  }
});

$("interp-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (state.ends.length < 2) {
    say("click two images first (samples or your upload): they are the ends A and B", true);
    return;
  }
  try {
    const body = {
      a: state.ends[0].z, b: state.ends[1].z, steps: Number($("steps").value), label: state.label,
    };
    const result = await (await postJSON("/api/interpolate", body)).json();
    $("interpolation").replaceChildren(...result.images.map((src) => thumbnail(src, null)));
    say("");
  } catch (e) {
    say(e.message, true);
  }
});

const SCORE_NAMES = {
  elbo: "negative ELBO",
  nll: "negative log-likelihood (importance sampled)",
};

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("invert", $("invert").checked);
  form.append("k", $("k").value);
  if (state.label !== null) form.append("label", state.label);
  try {
    const result = await (await api("/api/upload", { method: "POST", body: form })).json();
    $("upload-input").src = result.input;
    $("upload-recon").src = result.reconstruction;
    $("upload-input").onclick = () => pick(result.z, result.input);
    const rows = Object.entries(result.scores).map(([name, s]) => {
      let where = "no reference scores";
      if (s.percentile !== null) {
        where = `higher than ${s.percentile.toFixed(1)}% of the reference scores (${s.reference})`;
        if (s.flagged !== undefined) where += s.flagged ? "; flagged as an anomaly" : "; normal";
      }
      return `<tr><th>${SCORE_NAMES[name] || name}</th>` +
        `<td class="num" data-score="${name}">${s.value.toFixed(2)} nats</td><td>${where}</td></tr>`;
    });
    $("scores").innerHTML = "<tr><th>anomaly score</th><th>value</th><th>percentile</th></tr>" +
      rows.join("");
    pick(result.z, result.input);
    say("");
  } catch (e) {
    $("scores").innerHTML = "";
    say(e.message, true);
  }
}

$("upload").addEventListener("change", upload);
$("invert").addEventListener("change", upload);
$("upload-form").addEventListener("submit", (event) => { event.preventDefault(); upload(); });

// -- start ----------------------------------------------------------------------------------

async function start() {
  const info = await (await api("/api/info")).json();
  state.info = info;
  $("model-name").textContent = info.name;
  const classes = info.classes ? `, conditional on ${info.classes} classes` : "";
  $("model-summary").textContent = `${info.code_dim} latent dimensions, ` +
    `${info.image_shape.join("x")} images, ${info.likelihood} likelihood${classes}; ` +
    `reference data: ${info.data || "none"}`;
  for (const [id, limit] of [["n", "samples"], ["steps", "steps"], ["k", "k"]]) {
    $(id).max = info.limits[limit];
  }
  if (info.classes) {
    const select = $("label");
    for (let c = 0; c < info.classes; c += 1) select.append(new Option(String(c), c));
    $("class-picker").hidden = false;
    state.label = 0;
    select.addEventListener("change", () => {
      state.label = Number(select.value);
      decode();
      if (state.map && state.map.kind === "manifold") loadMap();
    });
  }
  state.z = new Array(info.code_dim).fill(0);
  setUpDimensions(info);
  $("reset").addEventListener("click", () => setCode(new Array(info.code_dim).fill(0)));
  await Promise.all([decode(), loadMap()]);
  if (info.curve) {
    $("curve").src = "/api/curve.png";
    $("curve").hidden = false;
  }
  $("card").textContent = info.card
    ? (await (await api("/api/card")).json()).text
    : "No model card: the model was saved outside a training run.";
  document.body.dataset.ready = "1";
}

start().catch((e) => say(e.message, true));
