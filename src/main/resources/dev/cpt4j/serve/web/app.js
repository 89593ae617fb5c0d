// cpt4j serve's page: a playground over the OpenAI API (streamed completions, two models side by side) and a
// training dashboard over /api/dashboard. Plain browser JavaScript, no build step, no third-party code.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("cpt4j-api-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("cpt4j-api-key", keyInput.value); loadModels(); });

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h["Authorization"] = "Bearer " + keyInput.value;
  return h;
}

async function errorText(res) {
  try { const j = await res.json(); return j.error ? j.error.message : res.statusText; } catch (e) { return res.statusText; }
}

// ---------------------------------------------------------------- tabs
for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === b);
    for (const p of document.querySelectorAll(".panel")) p.classList.toggle("hidden", p.id !== b.dataset.tab);
    if (b.dataset.tab === "dash") refreshDashboard();
  });
}

// ---------------------------------------------------------------- playground
async function loadModels() {
  const res = await fetch("/v1/models", { headers: headers() });
  if (!res.ok) { $("status").textContent = "models: " + (await errorText(res)); return; }
  const ids = (await res.json()).data.map((m) => m.id);
  const a = $("model-a"), b = $("model-b");
  a.innerHTML = "";
  b.innerHTML = '<option value="">(none)</option>';
  for (const id of ids) { a.add(new Option(id, id)); b.add(new Option(id, id)); }
  if (ids.length > 1) b.value = ids[1];
  $("status").textContent = ids.length + " model(s) served";
  $("status").dataset.models = ids.join(",");
}

// Streams one completion into `out`: server-sent events, one JSON chunk per `data:` line, until `data: [DONE]`.
async function stream(model, out) {
  const body = {
    model, prompt: $("prompt").value, stream: true,
    max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value),
    top_p: Number($("top-p").value), seed: Number($("seed").value),
  };
  const k = Number($("top-k").value);
  if (k > 0) body.top_k = k;
  out.textContent = "";
  const res = await fetch("/v1/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!res.ok) { out.textContent = "error: " + (await errorText(res)); return; }
  const reader = res.body.getReader();
  const dec = new TextDecoder("utf-8");
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (!ev.startsWith("data: ")) continue;
      const data = ev.slice(6);
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) { out.textContent += "\n[error: " + chunk.error.message + "]"; return; }
      for (const c of chunk.choices) out.textContent += c.text;
    }
  }
}

$("generate").addEventListener("click", async () => {
  const a = $("model-a").value, b = $("model-b").value;
  $("name-a").textContent = a || "A";
  $("name-b").textContent = b || "B";
  $("out-b").textContent = "";
  $("status").textContent = "generating…";
  $("status").dataset.state = "running";
  const jobs = [stream(a, $("out-a"))];
  if (b) jobs.push(stream(b, $("out-b")));
  try { await Promise.all(jobs); $("status").textContent = "done"; }
  catch (e) { $("status").textContent = "failed: " + e; }
  $("status").dataset.state = "done";
});

// ---------------------------------------------------------------- dashboard
function fmtTime(s) {
  if (s === undefined) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? h + " h " + m + " min" : m > 0 ? m + " min " + (s % 60) + " s" : s + " s";
}

function draw(canvas, series) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 56, R = 16, T = 16, B = 36;
  ctx.clearRect(0, 0, W, H);
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return 0;
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), py = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  ctx.strokeStyle = "#c5ccd8"; ctx.fillStyle = "#39465a"; ctx.font = "12px sans-serif"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    ctx.beginPath(); ctx.moveTo(L, py(y)); ctx.lineTo(W - R, py(y)); ctx.stroke();
    ctx.fillText(y.toFixed(2), 4, py(y) + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const x = x0 + (x1 - x0) * i / 4;
    ctx.fillText(String(Math.round(x)), px(x) - 10, H - B + 18);
  }
  ctx.fillText("step", W - R - 30, H - 4);
  for (const s of series) {
    if (s.points.length === 0) continue;
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    s.points.forEach((p, i) => (i ? ctx.lineTo(px(p[0]), py(p[1])) : ctx.moveTo(px(p[0]), py(p[1]))));
    ctx.stroke();
    if (s.points.length === 1) { ctx.fillStyle = s.color; ctx.fillRect(px(s.points[0][0]) - 3, py(s.points[0][1]) - 3, 6, 6); }
  }
  return pts.length;
}

async function refreshDashboard() {
  const res = await fetch("/api/dashboard", { headers: headers() });
  if (!res.ok) return;
  const d = await res.json();
  $("dash-none").classList.toggle("hidden", d.watching);
  $("dash-body").classList.toggle("hidden", !d.watching);
  if (!d.watching) return;
  $("dash-run").textContent = d.run;
  $("dash-step").textContent = d.step === undefined ? "–" : d.step + (d.max_steps ? " / " + d.max_steps : "");
  $("dash-loss").textContent = d.loss === undefined ? "–" : d.loss.toFixed(4);
  $("dash-lr").textContent = d.lr === undefined ? "–" : d.lr.toExponential(2);
  $("dash-eta").textContent = d.eta_s === 0 ? "finished" : fmtTime(d.eta_s);
  const n = draw($("curve"), [
    { color: "#2b6cb0", points: d.train.map((r) => [r.step, r.loss]) },
    { color: "#dd6b20", points: d.eval.map((r) => [r.step, r.eval_loss]) },
  ]);
  $("curve").dataset.points = String(n);
  $("dash-note").textContent = d.checkpoint_note || "";
  if (d.checkpoint_model && d.checkpoint_model !== sampledCheckpoint) {
    sampledCheckpoint = d.checkpoint_model;
    await sampleCheckpoint(d.base_model, d.checkpoint_model);
  }
}

// The newest checkpoint's samples: the playground's prompt, greedy, from the base and from that checkpoint.
let sampledCheckpoint = null;
async function sampleCheckpoint(base, ckpt) {
  const box = $("dash-samples");
  box.innerHTML = "";
  for (const model of [base, ckpt]) {
    const res = await fetch("/v1/completions", { method: "POST", headers: headers(), body: JSON.stringify(
        { model, prompt: $("prompt").value, max_tokens: 48, temperature: 0 }) });
    const div = document.createElement("div");
    div.className = "sample";
    const b = document.createElement("b");
    b.textContent = model;
    const pre = document.createElement("pre");
    pre.textContent = res.ok ? $("prompt").value + (await res.json()).choices[0].text : "error: " + (await errorText(res));
    div.append(b, pre);
    div.dataset.model = model;
    box.append(div);
  }
  box.dataset.checkpoint = ckpt;
}

loadModels();
setInterval(() => { if (!$("dash").classList.contains("hidden")) refreshDashboard(); }, 3000);
