// DeepSeekRL dashboard: plain JS, hash routing (#/ and #/campaigns/ID), uPlot charts, polling every 2 s.
// window.__charts holds what each chart plots ({x: steps, series: {label: values}}), for tests and debugging.
(function () {
  "use strict";

  const POLL_MS = 2000;
  const TOKEN_KEY = "deepseekrl.token";
  const COLORS = ["#2f6fdf", "#e0782f", "#2e8b57", "#b03a9c", "#c0392b", "#7a6ff0", "#1aa3a3", "#8a8a2e"];
  const view = document.getElementById("view");
  const live = document.getElementById("live");
  let pollTimer = null;
  let page = null; // the current page's state; replaced on navigation
  window.__charts = {};

  // ---- helpers ---------------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // fetch JSON; resolves to {status, body} (body null when not JSON); never throws on HTTP errors.
  async function api(path, init) {
    const response = await fetch(path, Object.assign({ headers: { Accept: "application/json" } }, init || {}));
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { status: response.status, ok: response.ok, body };
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(digits === undefined ? 3 : digits);
  }

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function stateBadge(state) { return el("span", { class: "state state-" + state, "data-state": state }, state); }
  function notAvailable(what) { return el("p", { class: "na" }, what + ": not available"); }

  function schedule(fn) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      try { await fn(); live.textContent = "live · updated " + new Date().toLocaleTimeString(); }
      catch (e) { live.textContent = "update failed: " + e.message; }
      if (page && page.poll === fn) schedule(fn);
    }, POLL_MS);
  }

  // ---- routing ------------------------------------------------------------------------------------------------
  function route() {
    clearTimeout(pollTimer);
    if (page && page.dispose) page.dispose();
    page = null;
    window.__charts = {};
    const hash = location.hash || "#/";
    const m = hash.match(/^#\/campaigns\/(\d+)/);
    if (m) campaignPage(Number(m[1]));
    else listPage();
  }
  window.addEventListener("hashchange", route);

  // ---- campaign list --------------------------------------------------------------------------------------------
  function listPage() {
    const body = el("tbody", { id: "campaign-rows" });
    view.replaceChildren(
      el("h1", {}, "Campaigns"),
      el("table", { id: "campaigns" },
        el("thead", {}, el("tr", {}, ["Id", "Name", "State", "Mode", "Steps", "Policy", "Created"].map(h => el("th", {}, h)))),
        body),
      startPanel());
    const poll = async () => {
      const r = await api("/api/campaigns");
      if (!r.ok) { body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "error" }, (r.body && r.body.error) || "HTTP " + r.status))); return; }
      if (r.body.length === 0) { body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No campaigns yet: ./deepseekrl campaign run SPEC"))); return; }
      body.replaceChildren(...r.body.map(c => el("tr", { "data-campaign-id": c.id },
        el("td", {}, c.id),
        el("td", {}, el("a", { href: "#/campaigns/" + c.id }, c.name)),
        el("td", {}, stateBadge(c.state)),
        el("td", {}, c.mode),
        el("td", {}, fmt(c.steps_completed) + " / " + fmt(c.total_steps)),
        el("td", {}, fmt(c.policy_version)),
        el("td", {}, c.created_at ? new Date(c.created_at).toLocaleString() : "–"))));
    };
    const current = page = { poll };
    const again = () => { if (page === current) schedule(poll); };
    poll().then(again, e => { body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "error" }, e.message))); again(); });
  }

  // ---- campaign page --------------------------------------------------------------------------------------------
  // Each chart: a title and a function from the step rows (and evaluations) to {x, series: {label: values}}.
  const CHARTS = [
    { id: "reward", title: "Reward (mean, std)", fields: ["reward_mean", "reward_std"] },
    { id: "rewards_per_rule", title: "Reward per rule (mean)", build: (steps) => {
        const rules = [];
        for (const s of steps) for (const k of Object.keys(s.rewards || {})) if (!rules.includes(k)) rules.push(k);
        const series = {};
        for (const r of rules) series[r] = steps.map(s => num((s.rewards || {})[r]));
        return { x: steps.map(s => s.step), series };
      } },
    { id: "eval_accuracy", title: "Eval accuracy", build: (steps, evals) =>
        ({ x: evals.map(e => e.step), series: { accuracy: evals.map(e => num(e.accuracy)) } }) },
    { id: "response_length", title: "Response length (tokens)", fields: ["response_length_mean", "response_length_max"] },
    { id: "clipped_length_ratio", title: "Clipped-length ratio", fields: ["clipped_length_ratio"] },
    { id: "kl", title: "KL", fields: ["kl"] },
    { id: "entropy", title: "Entropy", fields: ["entropy"] },
    { id: "clip_fractions", title: "Clip fractions", fields: ["clip_fraction", "clip_low_fraction", "clip_high_fraction"] },
    { id: "zero_std_group_fraction", title: "Zero-std group fraction", fields: ["zero_std_group_fraction"] },
    { id: "tokens_per_second", title: "Sampling throughput (tokens/s)", build: (steps) => ({
        x: steps.map(s => s.step),
        series: { "tokens/s": steps.map(s => num(s.completion_tokens) !== null && num(s.sampling_seconds) ? s.completion_tokens / s.sampling_seconds : null) } }) },
    { id: "step_time", title: "Step time breakdown (s)", fields: ["sampling_seconds", "scoring_seconds", "update_seconds", "publish_seconds"] },
    // Self-verification (docs/campaigns.md): a share is null where nothing could be measured (no sample verified, say),
    // and a null is drawn as a gap, never as a zero or a line bridging it.
    { id: "self_verification", title: "Self-verification per step", gaps: true,
      fields: ["verify_fraction", "detect_fraction", "repair_fraction", "accuracy_when_verifying", "accuracy_without_verifying"] },
    { id: "self_verification_eval", title: "Self-verification in evaluations", gaps: true, build: (steps, evals) => {
        const series = {};
        for (const f of ["accuracy_first_attempt", "accuracy_final", "verify_fraction", "repair_fraction"]) series[f] = evals.map(e => num(e[f]));
        return { x: evals.map(e => e.step), series };
      } },
  ];

  function chartData(def, steps, evals) {
    if (def.build) return def.build(steps, evals);
    const series = {};
    for (const f of def.fields) series[f] = steps.map(s => num(s[f]));
    return { x: steps.map(s => s.step), series };
  }

  function makePlot(container, data, gaps) {
    const labels = Object.keys(data.series);
    const width = Math.max(300, container.clientWidth - 10);
    const opts = {
      width, height: 220,
      scales: { x: { time: false } },
      series: [{ label: "step" }].concat(labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: !gaps, points: { size: 4 } }))),
      axes: [{ label: "step" }, {}],
      legend: { live: true },
    };
    return new uPlot(opts, [data.x].concat(labels.map(l => data.series[l])), container);
  }

  function campaignPage(id) {
    const header = el("div", { id: "status" }, el("p", { class: "muted" }, "Loading…"));
    const chartsBox = el("div", { class: "charts", id: "charts" });
    const heatBox = el("div", { class: "heatmaps", id: "expert-load" });
    const nodesBox = el("div", { id: "nodes" });
    const controls = controlsPanel(id);
    const samples = sampleBrowser(id);
    view.replaceChildren(
      el("p", {}, el("a", { href: "#/" }, "← all campaigns")),
      header, controls,
      el("h2", {}, "Metrics per step"), chartsBox,
      el("h2", {}, "Expert load per MoE layer"), heatBox,
      el("h2", {}, "Nodes"), nodesBox,
      el("h2", {}, "Samples"), samples.root);

    const plots = {}; // chart id -> {plot, labels}
    const chartBoxes = {};
    for (const def of CHARTS) {
      const box = el("div", { class: "chart-body" });
      chartBoxes[def.id] = box;
      chartsBox.append(el("div", { class: "chart", id: "chart-" + def.id, "data-chart": def.id }, el("h3", {}, def.title), box));
    }
    let lastSteps = -1;

    const poll = async () => {
      const [status, steps, nodes] = await Promise.all([api("/api/campaigns/" + id), api("/api/campaigns/" + id + "/steps"), api("/api/nodes")]);
      if (page === null || page.id !== id) return;
      if (!status.ok) {
        header.replaceChildren(el("p", { class: "error" }, (status.body && status.body.error) || "HTTP " + status.status));
        return;
      }
      renderStatus(header, status.body);
      const rows = steps.ok && Array.isArray(steps.body) ? steps.body : [];
      const evals = Array.isArray(status.body.evaluations) ? status.body.evaluations : [];
      const key = rows.length + ":" + evals.length + ":" + (rows.length ? JSON.stringify(rows[rows.length - 1]).length : 0);
      if (key !== lastSteps) {
        lastSteps = key;
        for (const def of CHARTS) {
          const data = chartData(def, rows, evals);
          window.__charts[def.id] = data;
          const labels = Object.keys(data.series);
          const box = chartBoxes[def.id];
          box.dataset.points = String(data.x.length);
          const empty = labels.every(l => data.series[l].every(v => v === null));
          if (data.x.length === 0 || labels.length === 0 || empty) {
            if (plots[def.id]) { plots[def.id].plot.destroy(); delete plots[def.id]; }
            box.replaceChildren(el("p", { class: "na" }, "no data yet"));
            continue;
          }
          if (typeof uPlot === "undefined") {
            box.replaceChildren(el("p", { class: "error" }, "the charting library (vendor/uPlot.iife.min.js) is missing: run infra/setup.sh and rebuild"));
            continue;
          }
          const existing = plots[def.id];
          if (existing && existing.labels.join("\u0000") === labels.join("\u0000")) {
            existing.plot.setData([data.x].concat(labels.map(l => data.series[l])));
          } else {
            if (existing) existing.plot.destroy();
            box.replaceChildren();
            plots[def.id] = { plot: makePlot(box, data, def.gaps === true), labels };
          }
        }
        renderHeatmaps(heatBox, rows);
      }
      renderNodes(nodesBox, nodes);
    };
    const current = page = { id, poll, dispose: () => { for (const p of Object.values(plots)) p.plot.destroy(); } };
    const again = () => { if (page === current) schedule(poll); };
    poll().then(again, e => { header.replaceChildren(el("p", { class: "error" }, e.message)); again(); });
    samples.load(true);
  }

  function renderStatus(box, c) {
    const counters = c.counters || {};
    const cards = [["State", stateBadge(c.state)], ["Mode", c.mode], ["Steps", fmt(c.steps_completed) + " / " + fmt(c.total_steps)], ["Policy version", fmt(c.policy_version)]];
    for (const [k, v] of Object.entries(counters)) cards.push([k.replace(/_/g, " "), fmt(v)]);
    box.replaceChildren(
      el("h1", {}, "Campaign " + c.id + " · ", el("span", { id: "campaign-name" }, c.name), " ", stateBadge(c.state)),
      c.error ? el("p", { class: "error", id: "campaign-error" }, c.error) : "",
      el("div", { class: "cards", id: "counters" }, cards.map(([k, v]) => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v" }, v)))));
  }

  // One canvas per MoE layer: x = step (binned to at most 600 columns), y = expert, colour = the expert's share of
  // the routed tokens in those steps relative to a fair share (drawn as pixels, then scaled up without smoothing).
  const HEAT_COLUMNS = 600;
  function renderHeatmaps(box, rows) {
    const withLoad = rows.filter(r => Array.isArray(r.expert_load) && r.expert_load.length > 0);
    const layers = withLoad.length ? Math.max(...withLoad.map(r => r.expert_load.length)) : 0;
    const moe = [];
    for (let l = 0; l < layers; l++) if (withLoad.some(r => Array.isArray(r.expert_load[l]) && r.expert_load[l].length > 0)) moe.push(l);
    if (moe.length === 0) { box.replaceChildren(el("p", { class: "na" }, "no expert load recorded (dense model or no update yet)")); return; }
    const items = [];
    const n = withLoad.length;
    const columns = Math.min(n, HEAT_COLUMNS);
    for (const layer of moe) {
      let experts = 0;
      for (const r of withLoad) experts = Math.max(experts, (r.expert_load[layer] || []).length);
      window.__charts["expert_load_layer_" + layer] = { x: withLoad.map(r => r.step), matrix: withLoad.map(r => r.expert_load[layer] || []) };
      const shares = new Float64Array(columns * experts);
      const counts = new Int32Array(columns);
      for (let i = 0; i < n; i++) {
        const c = Math.floor(i * columns / n);
        const load = withLoad[i].expert_load[layer] || [];
        let total = 0;
        for (let e = 0; e < load.length; e++) total += load[e] || 0;
        if (total <= 0) continue;
        for (let e = 0; e < experts; e++) shares[c * experts + e] += (load[e] || 0) / total * experts; // 1 = perfectly balanced
        counts[c]++;
      }
      const pixels = document.createElement("canvas");
      pixels.width = columns; pixels.height = experts;
      const pg = pixels.getContext("2d");
      const image = pg.createImageData(columns, experts);
      for (let c = 0; c < columns; c++) {
        for (let e = 0; e < experts; e++) {
          const share = counts[c] ? shares[c * experts + e] / counts[c] : 0;
          const t = Math.max(0, Math.min(1, share / 2));
          const o = (e * columns + c) * 4;
          image.data[o] = Math.round(255 * t);
          image.data[o + 1] = Math.round(80 + 100 * (1 - Math.abs(t - 0.5) * 2));
          image.data[o + 2] = Math.round(255 * (1 - t));
          image.data[o + 3] = counts[c] ? 255 : 0;
        }
      }
      pg.putImageData(image, 0, 0);
      const cellX = Math.max(1, Math.min(40, Math.floor(HEAT_COLUMNS / columns)));
      const cellY = Math.max(4, Math.min(16, Math.floor(240 / experts)));
      const canvas = el("canvas", { width: columns * cellX, height: experts * cellY, "data-layer": layer, title: "layer " + layer + ": " + experts + " experts × " + n + " steps" });
      const g = canvas.getContext("2d");
      g.imageSmoothingEnabled = false;
      g.drawImage(pixels, 0, 0, canvas.width, canvas.height);
      items.push(el("div", { class: "heatmap" }, el("h3", {}, "Layer " + layer), canvas,
        el("div", { class: "muted" }, "steps " + withLoad[0].step + "–" + withLoad[n - 1].step + (columns < n ? " (" + Math.ceil(n / columns) + " steps per column)" : "") + "; blue = idle, red = 2× its fair share")));
    }
    box.replaceChildren(...items);
  }

  function renderNodes(box, r) {
    if (r.status === 404) { box.replaceChildren(notAvailable("Nodes")); return; }
    if (!r.ok || !Array.isArray(r.body)) { box.replaceChildren(el("p", { class: "error" }, (r.body && r.body.error) || "HTTP " + r.status)); return; }
    if (r.body.length === 0) { box.replaceChildren(el("p", { class: "muted" }, "No nodes registered.")); return; }
    const now = Date.now();
    box.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ["Silo", "Address", "Generation", "Roles", "Status", "Alive", "Items held", "Singleton leases", "Activations", "Cluster", "Host"].map(h => el("th", {}, h)))),
      el("tbody", {}, r.body.map(n => {
        const age = n.alive_at ? Math.round((now - new Date(n.alive_at).getTime()) / 1000) : null;
        const activations = n.activations ? Object.entries(n.activations).map(([t, c]) => t + " " + c).join(", ") : "–";
        return el("tr", { "data-node-id": n.node_id },
          el("td", {}, n.node_id), el("td", {}, n.address || "–"), el("td", {}, fmt(n.generation)), el("td", {}, (n.roles || []).join(", ")),
          el("td", {}, stateBadge(n.state)),
          el("td", { class: age !== null && age > 60 && n.state !== "dead" ? "error" : "" }, age === null ? "–" : age + " s ago"),
          el("td", { class: "leases" }, fmt(n.leases)), el("td", { class: "singletons" }, (n.singletons || []).join(", ") || "–"),
          el("td", { class: "activations" }, activations), el("td", { class: "muted" }, n.cluster_id || "–"), el("td", {}, n.host || "–"));
      }))));
  }

  // ---- controls -------------------------------------------------------------------------------------------------
  // The token for state-changing calls: the input's value, else the session's, else asked for. null when none given.
  function tokenFor(input) {
    let token = (input && input.value.trim()) || sessionStorage.getItem(TOKEN_KEY) || "";
    if (!token) token = (window.prompt("API token (printed by the api role at first start):") || "").trim();
    if (!token) return null;
    sessionStorage.setItem(TOKEN_KEY, token);
    if (input) input.value = token;
    return token;
  }

  function tokenInput() {
    const input = el("input", { type: "password", class: "token", placeholder: "API token", autocomplete: "off" });
    input.value = sessionStorage.getItem(TOKEN_KEY) || "";
    input.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, input.value.trim()));
    return input;
  }

  // POST with the bearer token; shows progress and the outcome in `message`; resolves to the response or null.
  async function authorizedPost(path, body, what, input, message) {
    const token = tokenFor(input);
    if (!token) { message.className = "error"; message.textContent = what + ": a token is required"; return null; }
    message.className = "muted";
    message.textContent = what + "…";
    let r;
    const headers = { Accept: "application/json", Authorization: "Bearer " + token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try { r = await api(path, { method: "POST", headers, body }); }
    catch (e) { message.className = "error"; message.textContent = what + ": " + e.message; return null; }
    if (r.status === 404 && !(r.body && r.body.error && /campaign \d+ does not exist/.test(r.body.error))) { message.className = "na"; message.textContent = what + ": not available"; return null; }
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (input) input.value = "";
      message.className = "error";
      message.textContent = what + " refused: " + ((r.body && r.body.error) || "unauthorized");
      return null;
    }
    if (!r.ok) { message.className = "error"; message.textContent = what + ": " + ((r.body && r.body.error) || "HTTP " + r.status); return null; }
    return r;
  }

  function controlsPanel(id) {
    const message = el("span", { id: "control-message", class: "muted" });
    const input = tokenInput();
    input.id = "token";
    async function act(action) {
      const r = await authorizedPost("/api/campaigns/" + id + "/" + action, undefined, action, input, message);
      if (!r) return;
      message.className = "accepted";
      message.textContent = action + ": campaign is now " + (r.body && r.body.state);
      if (page && page.poll) page.poll();
    }
    return el("div", { class: "controls", id: "controls" },
      ["pause", "resume", "cancel"].map(a => el("button", { type: "button", "data-action": a, onclick: () => act(a) }, a[0].toUpperCase() + a.slice(1))),
      input, message);
  }

  // Start a campaign from a spec (JSON; its paths must lie in the server's data root, relative ones resolve against it).
  function startPanel() {
    const message = el("span", { id: "start-message", class: "muted" });
    const input = tokenInput();
    input.id = "start-token";
    const spec = el("textarea", { id: "spec", rows: "10", spellcheck: "false", placeholder: '{"name": "...", "policy": {...}, "dataset": {"path": "data/arithmetic.jsonl", ...}, ...}  (paths inside the server\'s data root, --data-root, default examples/; see docs/campaign-spec.md)' });
    async function start() {
      const r = await authorizedPost("/api/campaigns", spec.value, "start", input, message);
      if (!r) return;
      message.className = "accepted";
      message.textContent = "started campaign " + r.body.id;
      location.hash = "#/campaigns/" + r.body.id;
    }
    return el("details", { class: "start", id: "start-panel" }, el("summary", {}, "Start a campaign from a spec"),
      spec, el("div", { class: "controls" }, el("button", { type: "button", id: "start", onclick: start }, "Start"), input, message));
  }

  // ---- sample browser -------------------------------------------------------------------------------------------
  // Accepted samples carry the stored split; for the others, split the text at </think> (r1_zero prompts open the
  // <think> block themselves, so the completion may start inside it).
  function splitReasoning(item) {
    if (item.reasoning != null || item.answer != null) return { reasoning: item.reasoning || "", answer: item.answer || "" };
    const text = item.text || "";
    const close = text.indexOf("</think>");
    if (close >= 0) return { reasoning: text.slice(0, close).replace(/^\s*<think>/, "").trim(), answer: text.slice(close + 8).trim() };
    const open = text.indexOf("<think>");
    if (open >= 0) return { reasoning: text.slice(open + 7).trim(), answer: text.slice(0, open).trim() };
    return { reasoning: "", answer: text };
  }

  function sampleBrowser(id) {
    const list = el("div", { id: "sample-list" });
    const message = el("p", { id: "sample-message", class: "muted" });
    const more = el("button", { type: "button", id: "sample-next", hidden: "" }, "Next page");
    const form = el("form", { class: "filters", id: "sample-filters" },
      el("label", {}, "Step", el("input", { name: "step", type: "number", min: "0" })),
      el("label", {}, "Rule", el("input", { name: "rule", placeholder: "accuracy" })),
      el("label", {}, "Min", el("input", { name: "min", type: "number", step: "any" })),
      el("label", {}, "Max", el("input", { name: "max", type: "number", step: "any" })),
      el("label", {}, "Verdict", el("select", { name: "accepted" }, el("option", { value: "" }, "all"), el("option", { value: "true" }, "accepted"), el("option", { value: "false" }, "rejected"))),
      el("label", {}, "Reflection", el("select", { name: "reflection" }, el("option", { value: "" }, "all"), el("option", { value: "verify" }, "verifies"),
        el("option", { value: "detect" }, "detects a mistake"), el("option", { value: "repair" }, "repairs a mistake"))),
      el("label", {}, "Text", el("input", { name: "q", placeholder: "search" })),
      el("label", {}, "Per page", el("select", { name: "limit" }, ["10", "25", "50", "100"].map(n => el("option", n === "50" ? { value: n, selected: "" } : { value: n }, n)))),
      el("button", { type: "submit" }, "Filter"));
    let after = null;
    form.addEventListener("submit", (e) => { e.preventDefault(); load(true); });
    more.addEventListener("click", () => load(false));

    async function load(reset) {
      if (reset) after = null;
      const q = new URLSearchParams({ limit: form.elements.limit.value || "50" });
      if (after !== null) q.set("after_id", String(after));
      for (const name of ["step", "rule", "min", "max", "accepted", "reflection", "q"]) {
        const v = form.elements[name].value.trim();
        if (v !== "") q.set(name, v);
      }
      let r;
      try { r = await api("/api/campaigns/" + id + "/samples?" + q.toString()); }
      catch (e) { message.className = "error"; message.textContent = e.message; return; }
      if (r.status === 404 && !(r.body && r.body.error && /campaign \d+ does not exist/.test(r.body.error))) {
        form.hidden = true; more.hidden = true; list.replaceChildren(); message.className = "na"; message.textContent = "Samples: not available"; return;
      }
      if (!r.ok) { message.className = "error"; message.textContent = (r.body && r.body.error) || "HTTP " + r.status; return; }
      const items = r.body.items || [];
      if (reset) list.replaceChildren();
      list.append(...items.map(renderSample));
      after = r.body.next_after_id === undefined ? null : r.body.next_after_id;
      more.hidden = after === null;
      message.className = "muted";
      message.textContent = list.children.length === 0 ? "No samples match." : list.children.length + " samples shown" + (after === null ? " (end)" : "");
    }
    return { root: el("div", { id: "samples" }, form, message, list, more), load };
  }

  // completions.reflection: bit 1 verifies (a check line), bit 2 detects a mistake (a check failed), bit 4 repairs it
  // (a later check passed and the answer is correct); null until the reward worker scored the completion.
  const REFLECTION = [[1, "verifies"], [2, "detects"], [4, "repairs"]];
  function reflectionTag(bits) {
    if (typeof bits !== "number") return null;
    const names = REFLECTION.filter(([bit]) => (bits & bit) !== 0).map(([, name]) => name);
    return el("span", { class: "reflection", "data-reflection": bits, title: "self-verification of the reasoning's check lines" },
      names.length ? names.join(" · ") : "no check");
  }

  function renderSample(item) {
    const parts = splitReasoning(item);
    const scores = Object.entries(item.scores || {});
    const verdicts = item.verdicts ? Object.entries(item.verdicts) : [];
    return el("div", { class: "sample", "data-completion-id": item.completion_id },
      el("div", { class: "meta" },
        el("span", {}, "#" + item.completion_id), el("span", {}, "step " + fmt(item.step)), el("span", {}, "policy v" + fmt(item.policy_version)),
        el("span", {}, "reward " + fmt(item.reward)),
        el("span", { class: item.accepted ? "accepted" : "rejected" }, item.accepted ? "accepted" : "rejected"),
        reflectionTag(item.reflection)),
      el("details", {}, el("summary", {}, "Prompt"), el("pre", {}, item.prompt || "")),
      parts.reasoning ? el("div", {}, el("div", { class: "muted" }, "Reasoning"), el("pre", { class: "reasoning" }, parts.reasoning)) : null,
      el("div", {}, el("div", { class: "muted" }, "Answer"), el("pre", { class: "answer" }, parts.answer)),
      el("div", { class: "scores" }, scores.map(([rule, v]) => el("span", {}, rule + ": " + fmt(v)))),
      verdicts.length ? el("div", { class: "scores" }, "Verdict: ", verdicts.map(([rule, v]) => el("span", { class: v === false ? "rejected" : "" }, rule + " " + (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))))) : null);
  }

  route();
})();
