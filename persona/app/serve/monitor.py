# ruff: noqa: E501  (the page is HTML and JavaScript, not Python)
"""The live conversation monitor, served at ``/monitor``: one self-contained HTML page.

Chat with a served model, steer it per trait with sliders, see every reply token coloured by its
projection on a chosen trait (red: towards the trait, blue: away; hover for all values), and the
per-turn response-mean projections plotted as the conversation grows. Plain HTML, CSS and
JavaScript with no external files, so it works offline. It talks to this server's own API
(``/v1/persona/traits`` and ``/v1/chat/completions`` with ``per_token`` capture).
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>persona monitor</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#side{width:320px;padding:12px;border-right:1px solid #ddd;overflow:auto;background:#fafafa}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
#log{flex:1;overflow:auto;padding:12px}
.msg{margin:8px 0;padding:8px 10px;border-radius:8px;max-width:80%;white-space:pre-wrap;line-height:1.6}
.user{background:#e8f0fe;margin-left:auto}
.assistant{background:#fff;border:1px solid #e3e3e3}
.tok{border-radius:3px}
#bar{display:flex;gap:8px;padding:10px;border-top:1px solid #ddd}
#msg{flex:1;font:inherit;padding:6px;min-height:40px}
button{font:inherit;padding:6px 14px}
.trait{border-bottom:1px solid #eee;padding:6px 0}
.trait label{font-weight:600}
.row{display:flex;align-items:center;gap:6px;font-size:13px}
.row input[type=range]{flex:1}
#status{font-size:12px;color:#a00;min-height:1em}
#trace{width:100%;height:180px;border:1px solid #ddd;background:#fff}
.legend{font-size:12px;color:#555}
small{color:#666}
</style></head>
<body>
<div id="side">
  <h3 style="margin-top:0">persona monitor</h3>
  <div class="row">model <select id="model"></select></div>
  <div class="row">temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0" style="width:60px">
    max tokens <input id="maxtok" type="number" min="1" value="64" style="width:60px"></div>
  <h4>Traits</h4>
  <div id="traits"><small>loading...</small></div>
  <div class="row" style="margin-top:8px">colour by <select id="colour"></select></div>
  <p class="legend"><span style="background:rgba(220,50,47,.6)">&nbsp;towards&nbsp;</span>
    <span style="background:rgba(38,139,210,.6)">&nbsp;away&nbsp;</span>
    token projection on the unsteered stream (hover a token for values)</p>
  <h4>Per-turn trace <small>(response mean)</small></h4>
  <svg id="trace" viewBox="0 0 300 180" preserveAspectRatio="none"></svg>
  <div id="tracelegend" class="legend"></div>
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
const params = new URLSearchParams(location.search);
if (params.get("key")) {
  sessionStorage.setItem("persona-key", params.get("key"));
  history.replaceState(null, "", location.pathname);
}
const KEY = sessionStorage.getItem("persona-key");
const state = {traits: [], messages: [], turns: []};
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

async function init() {
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
      <label for="watch-${i}" style="color:${t.color}">${t.name}</label>
      <small>layer</small><input type="number" id="layer-${i}" min="1" max="${state.numLayers}" value="${t.layer}" style="width:48px"></div>
      <div class="row"><small>steer</small><input type="range" id="coef-${i}" min="-10" max="10" step="0.5" value="${t.coef}">
      <span id="coefv-${i}" style="width:36px;text-align:right">${t.coef}</span></div>`;
    box.appendChild(d);
    d.querySelector(`#watch-${i}`).onchange = (e) => { t.watch = e.target.checked; renderColourSelect(); };
    d.querySelector(`#layer-${i}`).onchange = (e) => { t.layer = parseInt(e.target.value, 10) || t.layer; };
    d.querySelector(`#coef-${i}`).oninput = (e) => { t.coef = parseFloat(e.target.value); $(`coefv-${i}`).textContent = t.coef; };
  });
  renderColourSelect();
}
function renderColourSelect() {
  const sel = $("colour"), keep = sel.value;
  sel.innerHTML = "";
  for (const t of state.traits.filter((t) => t.watch)) sel.add(new Option(t.name, t.name));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  recolour();
}

function personaBody() {
  const watched = state.traits.filter((t) => t.watch);
  const body = {steer: state.traits.filter((t) => t.coef !== 0).map((t) => ({vector: t.name, layer: t.layer, coef: t.coef}))};
  if (watched.length) {
    body.capture = {traits: watched.map((t) => t.name), layers: [...new Set(watched.map((t) => t.layer))], per_token: true};
  }
  return body;
}

function addMessage(role, text) {
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
  try {
    const out = await api("/v1/chat/completions", {
      model: $("model").value, messages: state.messages, logprobs: true,
      temperature: parseFloat($("temp").value) || 0, max_tokens: parseInt($("maxtok").value, 10) || 64,
      persona: personaBody(),
    });
    const choice = out.choices[0];
    state.messages.push({role: "assistant", content: choice.message.content});
    const turn = {tokens: (choice.logprobs ? choice.logprobs.content : []).map((c) => c.token),
                  meta: choice.persona || {}, el: pending, text: choice.message.content};
    state.turns.push(turn);
    renderTurn(turn);
    plotTrace();
  } catch (e) {
    pending.remove(); state.messages.pop(); status(e.message);
  } finally { state.busy = false; $("send").disabled = false; }
}

function layerOf(name) { const t = state.traits.find((t) => t.name === name); return t ? String(t.layer) : null; }

function renderTurn(turn) {
  const el = turn.el;
  el.innerHTML = "";
  const name = $("colour").value;
  const per = (turn.meta.per_token || {})[name] || {};
  const layers = Object.keys(per);
  const values = per[layerOf(name)] || (layers.length ? per[layers[0]] : null);
  if (!values || !turn.tokens.length) { el.textContent = turn.text; return; }
  const scale = Math.max(1e-6, ...values.map(Math.abs));
  turn.tokens.forEach((tok, i) => {
    const s = document.createElement("span");
    s.className = "tok";
    s.textContent = tok;
    const v = values[i];
    if (v !== undefined) {
      const a = (0.8 * Math.abs(v) / scale).toFixed(3);
      s.style.background = v >= 0 ? `rgba(220,50,47,${a})` : `rgba(38,139,210,${a})`;
      s.dataset.proj = v;
      const all = Object.entries(turn.meta.per_token || {}).map(([n, byLayer]) => {
        const vals = byLayer[layerOf(n)] || Object.values(byLayer)[0] || [];
        return `${n}: ${vals[i] !== undefined ? vals[i].toFixed(3) : "-"}`;
      });
      s.title = all.join("\n");
    }
    el.appendChild(s);
  });
}
function recolour() { state.turns.forEach(renderTurn); }

function plotTrace() {
  const svg = $("trace"), W = 300, H = 180, P = 16;
  const series = {};
  state.turns.forEach((turn, i) => {
    for (const [name, byLayer] of Object.entries(turn.meta.projections || {})) {
      const p = byLayer[layerOf(name)] || Object.values(byLayer)[0];
      if (p && p.response_mean !== null && p.response_mean !== undefined) (series[name] = series[name] || []).push([i + 1, p.response_mean]);
    }
  });
  const pts = Object.values(series).flat();
  svg.innerHTML = "";
  $("tracelegend").innerHTML = "";
  if (!pts.length) return;
  const n = Math.max(2, state.turns.length);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const x = (t) => P + (W - 2 * P) * (t - 1) / (n - 1);
  const y = (v) => H - P - (H - 2 * P) * (v - lo) / (hi - lo);
  const ns = "http://www.w3.org/2000/svg";
  const axis = document.createElementNS(ns, "line");
  Object.entries({x1: P, x2: W - P, y1: y(Math.min(Math.max(0, lo), hi)), y2: y(Math.min(Math.max(0, lo), hi)), stroke: "#bbb"}).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.appendChild(axis);
  for (const [name, data] of Object.entries(series)) {
    const t = state.traits.find((t) => t.name === name);
    const color = t ? t.color : "#333";
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", data.map(([t, v]) => `${x(t)},${y(v)}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "2");
    line.setAttribute("data-trait", name);
    svg.appendChild(line);
    for (const [t, v] of data) {
      const c = document.createElementNS(ns, "circle");
      c.setAttribute("cx", x(t)); c.setAttribute("cy", y(v)); c.setAttribute("r", 3); c.setAttribute("fill", color);
      const tip = document.createElementNS(ns, "title"); tip.textContent = `${name} turn ${t}: ${v.toFixed(3)}`;
      c.appendChild(tip); svg.appendChild(c);
    }
    $("tracelegend").innerHTML += `<span style="color:${color}">&#9632; ${name}</span> `;
  }
  $("tracelegend").innerHTML += `<br><small>${lo.toFixed(2)} .. ${hi.toFixed(2)}</small>`;
}

$("send").onclick = send;
$("msg").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); } });
$("colour").onchange = recolour;
$("reset").onclick = () => { state.messages = []; state.turns = []; $("log").innerHTML = ""; plotTrace(); status(""); };
init();
</script>
</body></html>
"""
