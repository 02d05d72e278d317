# ruff: noqa: E501  (the page is HTML and JavaScript, not Python)
"""The live conversation monitor, served at ``/monitor``: one self-contained HTML page.

Chat with a served model, steer it per trait with sliders (steered replies are framed and say
how), see every reply token coloured by its projection on a chosen trait against a stated
baseline (``baseline.py``: the unsteered base model's mean, scaled by the vector's length; red
towards the trait, blue away; hover for all values), a labelled per-turn trace with the
baselines, and export every token's projections as CSV or JSONL. A first-screen hint says what
to do and how to read the colours. Plain HTML, CSS and JavaScript with no external files, so it
works offline. It talks to this server's own API (``/v1/persona/traits``,
``/v1/persona/baseline`` and ``/v1/chat/completions`` with ``per_token`` capture).
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>persona monitor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#side{width:340px;padding:12px;border-right:1px solid #ddd;overflow:auto;background:#fafafa;box-sizing:border-box}
#side h4{margin:14px 0 6px}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
#log{flex:1;overflow:auto;padding:12px}
.msg{margin:8px 0;padding:8px 10px;border-radius:8px;max-width:80%;white-space:pre-wrap;line-height:1.6}
.user{background:#e8f0fe;margin-left:auto}
.assistant{background:#fff;border:1px solid #e3e3e3}
.assistant.steered{border:2px solid #b58900}
.badge{display:block;font-size:12px;color:#7a5a00;margin-bottom:4px;white-space:normal}
.tok{border-radius:3px}
#bar{display:flex;gap:8px;padding:10px;border-top:1px solid #ddd}
#msg{flex:1;font:inherit;padding:6px;min-height:40px}
button{font:inherit;padding:6px 14px}
.trait{border-bottom:1px solid #eee;padding:6px 0}
.trait label{font-weight:600}
.row{display:flex;align-items:center;gap:6px;font-size:13px}
.row input[type=range]{flex:1}
#status{font-size:12px;color:#a00;min-height:1em}
#trace{width:100%;height:220px;border:1px solid #ddd;background:#fff}
#trace text{font-size:10px;fill:#444}
.legend{font-size:12px;color:#555;line-height:1.4}
#scalebar{height:12px;border:1px solid #ccc;border-radius:2px;
background:linear-gradient(to right,rgba(38,139,210,.85),rgba(255,255,255,1) 50%,rgba(220,50,47,.85))}
.scalelabels{display:flex;justify-content:space-between;font-size:11px;color:#555}
#hint{max-width:640px;margin:40px auto;padding:16px 20px;border:1px solid #d0d7e2;border-radius:8px;
background:#f6f9fd;line-height:1.5;font-size:14px}
#hint h3{margin-top:0}
small{color:#666}
</style></head>
<body>
<div id="side">
  <h3 style="margin-top:0">persona monitor</h3>
  <div class="row">model <select id="model"></select></div>
  <div class="row">temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0" style="width:60px">
    max tokens <input id="maxtok" type="number" min="1" value="64" style="width:60px"></div>
  <h4>Traits <small>(monitor, layer, steer)</small></h4>
  <div id="traits"><small>loading...</small></div>
  <div class="row" style="margin-top:8px">colour by <select id="colour"></select></div>
  <h4>Token colour</h4>
  <div id="scalebar"></div>
  <div class="scalelabels"><span>-1 away</span><span>0 = baseline</span><span>+1 towards</span></div>
  <p class="legend" id="baseline">(token projection - baseline) / |v|: choose a trait to colour by.</p>
  <h4>Per-turn trace</h4>
  <svg id="trace" viewBox="0 0 320 220" aria-label="per-turn response-mean projection"></svg>
  <div id="tracelegend" class="legend"></div>
  <p><button id="csv">Export CSV</button> <button id="jsonl">Export JSONL</button></p>
  <p><button id="reset">New conversation</button></p>
  <div id="status"></div>
</div>
<div id="main">
  <div id="log"></div>
  <div id="bar"><textarea id="msg" placeholder="Message (Enter sends, Shift+Enter: new line)"></textarea>
    <button id="send">Send</button></div>
</div>
<script>
"use strict";
const COLORS = ["#d62728","#1f77b4","#2ca02c","#9467bd","#ff7f0e","#8c564b","#e377c2","#17becf"];
const HINT = `<div id="hint"><h3>Watch a persona trait, token by token</h3>
<p>Type a message below and press Enter. To steer the reply, move a trait's <b>steer</b> slider
first (positive: towards the trait, negative: away; the coefficient multiplies the raw persona
vector and is added to the reply's tokens at the trait's layer). Steered replies get a gold frame
and say how they were steered.</p>
<p><b>Reading the colours:</b> each reply token is coloured by its projection on the trait chosen
under <i>colour by</i>, read on the unsteered residual stream, relative to a stated
<b>baseline</b>: where the unsteered base model's own replies to the trait's questions sit
(white). <span style="background:rgba(220,50,47,.6)">&nbsp;Red&nbsp;</span> is towards the
trait, <span style="background:rgba(38,139,210,.6)">&nbsp;blue&nbsp;</span> away; full colour is
one whole vector length |v| from the baseline, the gap between the trait's and plain replies.
Hover a token for every monitored trait's value.</p>
<p>The trace on the left plots each turn's mean projection against the baselines (dashed);
<b>Export</b> saves every token's projections as CSV or JSONL.</p></div>`;
const params = new URLSearchParams(location.search);
if (params.get("key")) {
  sessionStorage.setItem("persona-key", params.get("key"));
  history.replaceState(null, "", location.pathname);
}
const KEY = sessionStorage.getItem("persona-key");
const state = {traits: [], messages: [], turns: [], baselines: {}};
const $ = (id) => document.getElementById(id);

function headers() {
  const h = {"Content-Type": "application/json"};
  if (KEY) h["Authorization"] = "Bearer " + KEY;
  return h;
}
async function api(path, body) {
  const r = await fetch(path, body ? {method: "POST", headers: headers(), body: JSON.stringify(body)}
                                   : {headers: headers()});
  const data = await r.json();
  if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
  return data;
}
function status(text) { $("status").textContent = text || ""; }
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function signed(v) { return (v > 0 ? "+" : "") + v; }

async function init() {
  $("log").innerHTML = HINT;
  try {
    const models = await api("/v1/models");
    for (const m of models.data) $("model").add(new Option(m.id, m.id));
    const t = await api("/v1/persona/traits");
    state.numLayers = t.num_layers;
    state.traits = t.traits.map((x, i) => ({name: x.name, layer: x.layer, coef: 0, watch: true, color: COLORS[i % COLORS.length]}));
    renderTraits();
  } catch (e) { status(e.message); }
}

function renderTraits() {
  const box = $("traits");
  box.innerHTML = "";
  if (!state.traits.length) {
    box.innerHTML = "<small>No persona vectors for this model: start the server with --vectors DIR.</small>";
  }
  state.traits.forEach((t, i) => {
    const d = document.createElement("div");
    d.className = "trait";
    d.innerHTML = `<div class="row"><input type="checkbox" id="watch-${i}" ${t.watch ? "checked" : ""}>
      <label for="watch-${i}" style="color:${t.color}">${esc(t.name)}</label>
      <small>layer</small><input type="number" id="layer-${i}" min="1" max="${state.numLayers}" value="${t.layer}" style="width:48px"></div>
      <div class="row"><small>steer</small><input type="range" id="coef-${i}" min="-10" max="10" step="0.5" value="${t.coef}">
      <span id="coefv-${i}" style="width:36px;text-align:right">${t.coef}</span></div>`;
    box.appendChild(d);
    d.querySelector(`#watch-${i}`).onchange = (e) => { t.watch = e.target.checked; renderColourSelect(); };
    d.querySelector(`#layer-${i}`).onchange = (e) => { t.layer = parseInt(e.target.value, 10) || t.layer; refresh(); };
    d.querySelector(`#coef-${i}`).oninput = (e) => { t.coef = parseFloat(e.target.value); $(`coefv-${i}`).textContent = t.coef; };
  });
  renderColourSelect();
}
function renderColourSelect() {
  const sel = $("colour"), keep = sel.value;
  sel.innerHTML = "";
  for (const t of state.traits.filter((t) => t.watch)) sel.add(new Option(t.name, t.name));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  refresh();
}

// -- baselines: where the unsteered base model's replies sit, and |v| (the colour scale) --------
function traitOf(name) { return state.traits.find((t) => t.name === name); }
function layerOf(name) { const t = traitOf(name); return t ? String(t.layer) : null; }
function baselineOf(name) { const t = traitOf(name); return t ? state.baselines[`${t.name}@${t.layer}`] : undefined; }
function ensureBaselines() {
  for (const t of state.traits.filter((t) => t.watch)) {
    const key = `${t.name}@${t.layer}`;
    if (state.baselines[key]) continue;
    state.baselines[key] = {pending: true};
    api(`/v1/persona/baseline?trait=${encodeURIComponent(t.name)}&layer=${t.layer}`)
      .then((b) => { state.baselines[key] = b; refresh(); })
      .catch((e) => { state.baselines[key] = {error: e.message}; status(`baseline for ${t.name}: ${e.message}`); refresh(); });
  }
}
function renderBaseline() {
  const name = $("colour").value, b = baselineOf(name);
  const el = $("baseline");
  if (!name) { el.textContent = "No trait monitored: tick a trait to colour its tokens."; return; }
  if (!b || b.pending) { el.textContent = `computing the baseline for ${name} at layer ${layerOf(name)} (the unsteered base model answers a few questions)...`; return; }
  if (b.error) { el.textContent = `no baseline for ${name}: ${b.error}`; return; }
  el.innerHTML = `colour = (token projection - baseline) / |v|, capped at &plusmn;1, for <b>${esc(name)}</b> at layer ${b.layer}.
    Baseline <b>${b.mean.toFixed(3)}</b>: mean per-token projection of the unsteered base model's replies
    (greedy, ${b.max_tokens} tokens at most) to ${esc(b.questions)}, ${b.n_tokens} tokens, SD ${b.sd.toFixed(3)}.
    |v| = <b>${b.scale.toFixed(3)}</b>: the vector's length at this layer, the gap between the trait's and plain replies
    (projections in residual-stream units).`;
}
function relative(name, v) {
  const b = baselineOf(name);
  return b && b.mean !== undefined && b.scale > 0 ? (v - b.mean) / b.scale : null;
}

// -- chat -------------------------------------------------------------------------------------
function personaBody() {
  const watched = state.traits.filter((t) => t.watch);
  const body = {steer: state.traits.filter((t) => t.coef !== 0).map((t) => ({vector: t.name, layer: t.layer, coef: t.coef, positions: "response"}))};
  if (watched.length) {
    body.capture = {traits: watched.map((t) => t.name), layers: [...new Set(watched.map((t) => t.layer))], per_token: true};
  }
  return body;
}

function addMessage(role, text) {
  if ($("hint")) $("hint").remove();
  const d = document.createElement("div");
  d.className = "msg " + role;
  d.textContent = text;
  $("log").appendChild(d);
  $("log").scrollTop = $("log").scrollHeight;
  return d;
}

async function send() {
  const text = $("msg").value.trim();
  if (!text || state.busy) return;
  state.busy = true; status(""); $("send").disabled = true;
  $("msg").value = "";
  state.messages.push({role: "user", content: text});
  addMessage("user", text);
  const pending = addMessage("assistant", "...");
  const persona = personaBody();
  try {
    const out = await api("/v1/chat/completions", {
      model: $("model").value, messages: state.messages, logprobs: true,
      temperature: parseFloat($("temp").value) || 0, max_tokens: parseInt($("maxtok").value, 10) || 64,
      persona: persona,
    });
    const choice = out.choices[0];
    state.messages.push({role: "assistant", content: choice.message.content});
    const turn = {index: state.turns.length + 1, model: $("model").value, steer: persona.steer,
                  tokens: (choice.logprobs ? choice.logprobs.content : []).map((c) => c.token),
                  meta: choice.persona || {}, el: pending, text: choice.message.content};
    state.turns.push(turn);
    renderTurn(turn);
    plotTrace();
  } catch (e) {
    pending.remove(); state.messages.pop(); status(e.message);
  } finally { state.busy = false; $("send").disabled = false; }
}

function steerText(steer) {
  return steer.map((s) => `${s.vector} ${signed(s.coef)} (layer ${s.layer})`).join(", ");
}

function renderTurn(turn) {
  const el = turn.el;
  el.innerHTML = "";
  el.classList.toggle("steered", turn.steer.length > 0);
  if (turn.steer.length) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = `steered: ${steerText(turn.steer)}`;
    el.appendChild(badge);
  }
  const name = $("colour").value;
  const per = (turn.meta.per_token || {})[name] || {};
  const values = per[layerOf(name)] || null;
  if (!values || !turn.tokens.length) { el.appendChild(document.createTextNode(turn.text)); return; }
  turn.tokens.forEach((tok, i) => {
    const s = document.createElement("span");
    s.className = "tok";
    s.textContent = tok;
    const v = values[i];
    if (v !== undefined && v !== null) {
      const d = relative(name, v);
      const a = d === null ? 0 : (0.85 * Math.min(1, Math.abs(d))).toFixed(3);
      s.style.background = d !== null && d < 0 ? `rgba(38,139,210,${a})` : `rgba(220,50,47,${a})`;
      s.dataset.proj = v;
      if (d !== null) s.dataset.rel = d.toFixed(4);
      const all = Object.entries(turn.meta.per_token || {}).map(([n, byLayer]) => {
        const vals = byLayer[layerOf(n)] || [];
        const r = vals[i] !== undefined ? relative(n, vals[i]) : null;
        return `${n} (layer ${layerOf(n)}): ${vals[i] !== undefined ? vals[i].toFixed(3) : "-"}` +
          (r === null ? "" : ` = baseline ${r >= 0 ? "+" : "-"} ${Math.abs(r).toFixed(2)} |v|`);
      });
      s.title = all.join("\n");
    }
    el.appendChild(s);
  });
}
function refresh() {
  ensureBaselines();
  renderBaseline();
  state.turns.forEach(renderTurn);
  plotTrace();
}

// -- the per-turn trace: response-mean projection per assistant turn, baselines dashed ----------
function niceTicks(lo, hi, n) {
  const step0 = (hi - lo) / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toFixed(10));
  return out;
}
function plotTrace() {
  const svg = $("trace"), W = 320, H = 220, L = 48, R = 12, T = 18, B = 34;
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  const series = {};
  state.turns.forEach((turn) => {
    for (const [name, byLayer] of Object.entries(turn.meta.projections || {})) {
      const p = byLayer[layerOf(name)];
      if (p && p.response_mean !== null && p.response_mean !== undefined) (series[name] = series[name] || []).push([turn.index, p.response_mean, turn]);
    }
  });
  svg.innerHTML = "";
  const names = Object.keys(series);
  const bases = names.map((n) => [n, baselineOf(n)]).filter(([, b]) => b && b.mean !== undefined);
  const ys = Object.values(series).flat().map((p) => p[1]).concat(bases.map(([, b]) => b.mean));
  const n = Math.max(2, state.turns.length);
  let lo = ys.length ? Math.min(...ys) : -1, hi = ys.length ? Math.max(...ys) : 1;
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = 0.08 * (hi - lo); lo -= pad; hi += pad;
  const x = (t) => L + (W - L - R) * (t - 1) / (n - 1);
  const y = (v) => H - B - (H - T - B) * (v - lo) / (hi - lo);
  el("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#888"});
  el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#888"});
  for (const v of niceTicks(lo, hi, 4)) {
    el("line", {x1: L - 3, x2: W - R, y1: y(v), y2: y(v), stroke: "#eee"});
    el("text", {x: L - 5, y: y(v) + 3, "text-anchor": "end"}, String(+v.toPrecision(3)));
  }
  const every = Math.ceil(n / 10);
  for (let t = 1; t <= n; t += every) el("text", {x: x(t), y: H - B + 12, "text-anchor": "middle"}, String(t));
  el("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle"}, "assistant turn");
  el("text", {x: 11, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 11 ${(T + H - B) / 2})`},
     "response-mean projection (residual units)");
  if (!names.length) {
    el("text", {x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle"}, "no turns yet");
  }
  for (const [name, b] of bases) {
    const t = traitOf(name);
    el("line", {x1: L, x2: W - R, y1: y(b.mean), y2: y(b.mean), stroke: t ? t.color : "#333", "stroke-dasharray": "4 3", "data-baseline": name});
  }
  for (const [name, data] of Object.entries(series)) {
    const t = traitOf(name), color = t ? t.color : "#333";
    el("polyline", {points: data.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2, "data-trait": name});
    for (const [i, v, turn] of data) {
      const steered = turn.steer.length > 0;
      const c = el("circle", {cx: x(i), cy: y(v), r: steered ? 5 : 3, fill: steered ? "#fff" : color, stroke: color, "stroke-width": steered ? 2 : 1});
      const tip = document.createElementNS(ns, "title");
      tip.textContent = `${name} turn ${i}: ${v.toFixed(3)}` + (steered ? `, steered ${steerText(turn.steer)}` : "");
      c.appendChild(tip);
      if (steered && name === names[0]) {
        const anchor = i === 1 ? "start" : (i === n ? "end" : "middle");  // inside the plot
        el("text", {x: x(i), y: y(v) - 8, "text-anchor": anchor, "font-weight": "bold", "class": "steer-label"},
           turn.steer.map((s) => signed(s.coef)).join("/"));
      }
    }
  }
  $("tracelegend").innerHTML = names.map((nm) => { const t = traitOf(nm); return `<span style="color:${t ? t.color : "#333"}">&#9632; ${esc(nm)} (layer ${layerOf(nm)})</span>`; }).join(" ") +
    (names.length ? `<br>dashed: baseline (unsteered base model); hollow point: steered turn, coefficient above it` : "");
}

// -- export: every token's projection on every monitored trait --------------------------------
function exportRows() {
  const rows = [];
  for (const turn of state.turns) {
    for (const [name, byLayer] of Object.entries(turn.meta.per_token || {})) {
      for (const [layer, values] of Object.entries(byLayer)) {
        const b = state.baselines[`${name}@${layer}`];
        const ok = b && b.mean !== undefined;
        values.forEach((v, i) => rows.push({
          turn: turn.index, model: turn.model, steering: steerText(turn.steer), trait: name,
          layer: Number(layer), token_index: i, token: turn.tokens[i] === undefined ? null : turn.tokens[i],
          projection: v, baseline: ok ? b.mean : null, scale: ok ? b.scale : null,
          relative: ok && v !== null ? (v - b.mean) / b.scale : null,
        }));
      }
    }
  }
  return rows;
}
const COLUMNS = ["turn", "model", "steering", "trait", "layer", "token_index", "token", "projection", "baseline", "scale", "relative"];
function toCSV(rows) {
  const cell = (v) => { const s = v === null || v === undefined ? "" : String(v); return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  return [COLUMNS.join(","), ...rows.map((r) => COLUMNS.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}
function toJSONL(rows) { return rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : ""); }
function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type}));
  a.download = name; document.body.appendChild(a); a.click(); a.remove();
}
window.personaMonitor = {exportRows, toCSV, toJSONL};

$("send").onclick = send;
$("msg").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });
$("colour").onchange = refresh;
$("csv").onclick = () => { if (!state.turns.length) return status("nothing to export yet"); download("persona-monitor.csv", toCSV(exportRows()), "text/csv"); };
$("jsonl").onclick = () => { if (!state.turns.length) return status("nothing to export yet"); download("persona-monitor.jsonl", toJSONL(exportRows()), "application/x-ndjson"); };
$("reset").onclick = () => { state.messages = []; state.turns = []; $("log").innerHTML = HINT; plotTrace(); status(""); };
plotTrace();
init();
</script>
</body></html>
"""
