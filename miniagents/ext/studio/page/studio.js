// MiniAgents Studio: the page. Plain JavaScript, no library, nothing from another site.
//
// Opened as /#token=..., the page keeps the token in this tab's sessionStorage, under its own
// path (and takes it out of the address bar at once) and sends it with every request
// (Authorization: Bearer).
// ?run=ID shows a run: its events come as SSE (/api/runs/ID/events), a chunk of them per
// message ({first, events}, each event an array: see miniagents.ext.studio.events), and the
// page builds the tree from them as they come (the same tree as miniagents.ext.studio.tree);
// while the run is live, nodes appear and their tokens stream into them. ?left=A&right=B
// shows two runs side by side (/api/diff), followed live while the right one (a fork) runs.
// Every text of a run is put into the page as text (textContent), never as HTML.
"use strict";

(() => {
  // Kept by the page's path: two studios mounted on one origin (/one/, /two/) share the
  // tab's sessionStorage, and each keeps its own token there.
  const token = (() => {
    const key = "studio-token:" + location.pathname;
    const given = new URLSearchParams(location.hash.slice(1)).get("token");
    if (given) {
      sessionStorage.setItem(key, given);
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(key);
  })();
  const AUTH = token ? { Authorization: "Bearer " + token } : {};

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  // el("span", {class: "x", "data-id": 3}, "text", child, ...): an element, its texts as text
  function el(tag, attributes, ...children) {
    const made = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "onclick") made.addEventListener("click", value);
      else made.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      made.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return made;
  }

  function say(text) {
    $("#notice").textContent = text;
  }

  // -- the API --------------------------------------------------------------------------

  async function failure(response) {
    try {
      const body = await response.json();
      return new Error(body.error ? body.error.message : response.statusText);
    } catch (_) {
      return new Error(`${response.status} ${response.statusText}`);
    }
  }

  // Paths are relative to the page (api/..., not /api/...): the studio may be mounted under a
  // prefix of another app (Mount("/studio", app=...)).
  async function api(path, options = {}) {
    const headers = { ...AUTH, ...(options.body ? { "Content-Type": "application/json" } : {}) };
    const response = await fetch(path, { ...options, headers });
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  // Follows /api/runs/ID/events: onEvents(list) per batch, then onEnd(run) (or onError).
  // Reconnects from the last event seen if the connection breaks.
  async function follow(runId, { onEvents, onEnd, onError, signal }) {
    let after = 0;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const response = await fetch(`api/runs/${encodeURIComponent(runId)}/events?after=${after}`, { headers: AUTH, signal });
        if (!response.ok) throw await failure(response);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const batch = [];
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let kind = "message";
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) kind = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (kind === "end") {
              if (batch.length) onEvents(batch);
              onEnd(JSON.parse(data));
              return;
            }
            if (kind === "error") {
              if (batch.length) onEvents(batch);
              onError(new Error(JSON.parse(data).message));
              return;
            }
            const chunk = JSON.parse(data); // {first, events}: the events numbered from first
            after = chunk.first + chunk.events.length - 1;
            batch.push(...chunk.events);
          }
          if (batch.length) onEvents(batch);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (attempt > 20 || /not_found|no run|bearer/i.test(error.message)) {
          onError(error);
          return;
        }
      }
      await new Promise((wake) => setTimeout(wake, 1000)); // (the connection broke: again)
    }
  }

  // -- a run, from its events (as miniagents.ext.studio.tree builds it) ------------------

  class RunModel {
    constructor(run) {
      this.run = run;
      this.nodes = new Map();
      this.calls = new Map();
      this.roots = [];
      this.last = run.started;
    }

    now() {
      return this.run.ended ?? Math.max(this.last, Date.now() / 1000);
    }

    // One event, as miniagents.ext.studio.events writes it (a JSON array, its times in
    // nanoseconds); the node it changed, if any.
    apply(item) {
      const kind = item[0];
      const at = (ns) => {
        const t = ns / 1e9;
        this.last = Math.max(this.last, t);
        return t;
      };
      switch (kind) {
        case "node": {
          const [, id, parent, nodeKind, name, ns, extra] = item;
          const t = at(ns);
          const node = {
            id, parent, kind: nodeKind, name, started: t, ended: null, error: null, inputs: [],
            replies: [], calls: [], children: [], arguments: extra ? extra.arguments : null,
            result: null, decision: null,
          };
          this.nodes.set(id, node);
          const above = parent == null ? null : this.nodes.get(parent);
          (above ? above.children : this.roots).push(node);
          return node;
        }
        case "message": {
          const [, nodeId, role, index, enteredNs, ns, message, error] = item;
          const t = at(ns);
          const entered = (enteredNs ?? ns) / 1e9; // (null: complete as it entered)
          const node = this.nodes.get(nodeId);
          const shown = { index, entered, done: t, error, message: typeof message === "string" ? { class: "Message", text: message } : message };
          if (node) (role === "input" ? node.inputs : node.replies).push(shown);
          return node;
        }
        case "end": {
          const [, id, ns, error, result] = item;
          const t = at(ns);
          const node = this.nodes.get(id);
          if (node) Object.assign(node, { ended: t, error, result });
          return node;
        }
        case "call": {
          const [, id, nodeId, ns, request] = item;
          const t = at(ns);
          const call = {
            id, node: nodeId, provider: request.provider, model: request.model, key: request.key,
            unkeyed: request.unkeyed || null, request: request.request, started: t, items: [], text: "", ended: null, finish: null,
            cost: null, error: null,
          };
          this.calls.set(id, call);
          const node = this.nodes.get(nodeId);
          if (node) node.calls.push(call);
          return node;
        }
        case "token": {
          const [, callId, ns, piece] = item;
          const t = at(ns);
          const call = this.calls.get(callId);
          if (!call) return null;
          call.items.push([t, piece]);
          if (typeof piece === "string") call.text += piece;
          return this.nodes.get(call.node);
        }
        case "call_end": {
          const [, id, ns, ended, error] = item;
          const t = at(ns);
          const call = this.calls.get(id);
          if (!call) return null;
          Object.assign(call, { ended: t, finish: ended ? ended.finish : null, cost: ended ? ended.cost_usd : null, error });
          return this.nodes.get(call.node);
        }
        case "decision": {
          const [, nodeId, ns, decision] = item;
          at(ns);
          const node = this.nodes.get(nodeId);
          if (node) node.decision = decision;
          return node;
        }
        default:
          return null;
      }
    }

    // Each node's branch sums (time, tokens, cost), from the leaves up.
    sums() {
      const now = this.now();
      const walk = (node) => {
        let cost = 0, input = 0, output = 0;
        for (const call of node.calls) {
          cost += call.cost || 0;
          input += (call.finish && call.finish.input_tokens) || 0;
          output += (call.finish && call.finish.output_tokens) || 0;
        }
        for (const child of node.children) {
          walk(child);
          cost += child.sum.cost;
          input += child.sum.input;
          output += child.sum.output;
        }
        node.sum = { cost, input, output, seconds: (node.ended ?? now) - node.started };
      };
      for (const root of this.roots) walk(root);
    }

    path(measure) {
      const path = [];
      let level = this.roots;
      while (level.length) {
        const top = level.reduce((best, node) => (measure(node) > measure(best) ? node : best));
        path.push(top);
        level = top.children;
      }
      return path;
    }
  }

  const seconds = (value) => (value < 10 ? value.toFixed(2) : value.toFixed(1)) + " s";
  const dollars = (value) => (value ? "$" + (value >= 0.01 ? value.toFixed(4) : value.toPrecision(2)) : "$0");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }) + "." + String(Math.floor((t % 1) * 1000)).padStart(3, "0");
  const messageText = (shown) => (shown && shown.message ? shown.message.text : "");
  const errorText = (error) => (error ? `${error.type}: ${error.message}` : "");

  function nodePreview(node) {
    const calls = node.calls;
    if (node.kind === "tool") return node.result ? node.result.text : node.error ? errorText(node.error) : node.arguments || "";
    for (let index = calls.length - 1; index >= 0; index--) if (calls[index].text) return calls[index].text;
    if (node.replies.length) return messageText(node.replies[node.replies.length - 1]);
    return "";
  }

  // -- the page's state --------------------------------------------------------------------

  const state = {
    runs: [],
    model: null, // the open run
    following: null, // its AbortController
    selected: null, // the selected node's id
    collapsed: new Set(), // the ids of the branches closed
    path: new Set(), // the ids of the branch shown (slowest, most expensive)
    dirty: false,
    wantFocus: false, // the tree's focus was asked for before it had a row
    compare: null, // {left, right, controller}
  };

  // -- the runs ------------------------------------------------------------------------

  async function loadRuns() {
    const found = await api("api/runs");
    const store = $("#store");
    store.textContent = found.store.split(/[\\/]/).pop(); // (its file; the whole path on hover)
    store.title = found.store;
    state.runs = found.runs;
    renderRuns();
  }

  function renderRuns() {
    const list = $("#runs");
    const current = state.model ? state.model.run.id : null;
    const focused = document.activeElement && document.activeElement.closest("#runs") ? document.activeElement.dataset.run : null;
    list.replaceChildren(
      ...state.runs.map((run) =>
        el("li", { class: run.forked_from ? "forked" : null },
          el("button", { type: "button", "data-run": run.id, "aria-current": run.id === current ? "true" : null, onclick: () => go({ run: run.id }) },
            el("span", {}, run.forked_from ? "↳ " : "", run.name),
            el("span", { class: `badge ${run.status}` }, run.status),
            el("span", { class: "when" }, `${run.id}${run.forked_from ? " · fork of " + run.forked_from : ""}`)))),
    );
    if (focused) $(`#runs button[data-run="${CSS.escape(focused)}"]`)?.focus();
  }

  $("#runs").addEventListener("keydown", (event) => {
    const buttons = $$("#runs button");
    const at = buttons.indexOf(document.activeElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (to === undefined || !buttons.length) return;
    event.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, to))].focus();
  });

  // -- one run ---------------------------------------------------------------------------

  async function openRun(runId) {
    stopFollowing();
    const run = await api(`api/runs/${encodeURIComponent(runId)}`);
    const model = new RunModel(run);
    state.model = model;
    state.selected = null;
    state.wantFocus = false;
    state.collapsed = new Set();
    state.path = new Set();
    show("run");
    $("#run-title").textContent = `${run.name} · ${run.id}`;
    const fork = $("#run-fork");
    fork.hidden = !run.forked_from;
    if (run.forked_from) fork.textContent = `A fork of ${run.forked_from} at call ${run.fork.call} (${Object.keys(run.fork).filter((name) => ["reply", "prompt", "system"].includes(name) && run.fork[name] !== null).join(", ")} edited).`;
    $("#to-compare").hidden = !run.forked_from;
    renderRuns();
    renderRun();
    const controller = new AbortController();
    state.following = controller;
    follow(run.id, {
      signal: controller.signal,
      onEvents(events) {
        for (const event of events) model.apply(event);
        if (state.model === model) schedule();
      },
      onEnd(ended) {
        model.run = ended;
        if (state.model === model) {
          schedule();
          loadRuns().catch(() => {});
        }
      },
      onError(error) {
        say(error.message);
      },
    });
  }

  function stopFollowing() {
    if (state.following) state.following.abort();
    state.following = null;
    if (state.compare) state.compare.controller.abort();
    state.compare = null;
  }

  let scheduled = null;
  function schedule() {
    state.dirty = true;
    if (scheduled === null) scheduled = setTimeout(() => { scheduled = null; renderRun(); }, 60);
  }

  function visibleNodes() {
    const shown = [];
    const walk = (nodes, level) => {
      for (const node of nodes) {
        shown.push([node, level]);
        if (node.children.length && !state.collapsed.has(node.id)) walk(node.children, level + 1);
      }
    };
    walk(state.model.roots, 1);
    return shown;
  }

  function renderRun() {
    const model = state.model;
    if (!model) return;
    state.dirty = false;
    model.sums();
    const run = model.run;
    const status = $("#run-status");
    status.className = `badge ${run.status}`;
    status.textContent = run.status;
    const agents = [...model.nodes.values()].filter((node) => node.kind === "agent").length;
    const cost = model.roots.reduce((sum, node) => sum + node.sum.cost, 0);
    const input = model.roots.reduce((sum, node) => sum + node.sum.input, 0);
    const output = model.roots.reduce((sum, node) => sum + node.sum.output, 0);
    $("#run-totals").textContent = `${agents} agent calls · ${model.calls.size} model calls · ${seconds(model.now() - run.started)} · ${input} → ${output} tokens · ${dollars(cost)}${run.error ? " · " + run.error : ""}`;
    renderTree();
    renderDetails();
  }

  function renderTree() {
    const tree = $("#tree");
    const model = state.model;
    const hadFocus = tree.contains(document.activeElement);
    const longest = Math.max(1e-9, ...model.roots.map((node) => node.sum.seconds));
    const shown = visibleNodes();
    if (state.selected === null && shown.length) state.selected = shown[0][0].id;
    const rows = shown.map(([node, level]) => {
      const open = node.children.length ? !state.collapsed.has(node.id) : null;
      const classes = ["node", node.ended === null ? "running" : null, node.error ? "failed" : null, state.path.has(node.id) ? "on-path" : null];
      const figures = [seconds(node.sum.seconds)];
      if (node.sum.input || node.sum.output) figures.push(`${node.sum.input} → ${node.sum.output} tok`);
      const fill = el("span", { class: "fill" });
      fill.style.width = `${Math.min(100, (100 * node.sum.seconds) / longest).toFixed(1)}%`;
      const row = el("div", {
        role: "treeitem", "aria-level": level, "aria-expanded": open === null ? null : String(open),
        "aria-selected": String(node.id === state.selected), tabindex: node.id === state.selected ? "0" : "-1",
        "data-node-id": node.id, "data-kind": node.kind, class: classes.filter(Boolean).join(" "),
      },
        el("span", { class: "caret", "aria-hidden": "true" }, open === null ? "" : open ? "▾" : "▸"),
        el("span", { class: "kind" }, node.kind),
        el("span", { class: "name" }, node.name),
        el("span", { class: "figures" }, figures.join(" · "), node.sum.cost ? el("span", { class: "cost" }, " · " + dollars(node.sum.cost)) : null),
        el("span", { class: "muted" }, "#" + node.id),
        el("span", { class: "bar", "aria-hidden": "true" }, fill),
        el("span", { class: "preview" }, node.error ? errorText(node.error) : nodePreview(node).slice(-160)));
      row.style.paddingLeft = `${0.5 + (level - 1) * 1.2}rem`;
      return row;
    });
    tree.replaceChildren(...rows);
    if (!rows.length) tree.append(el("p", { class: "muted" }, model.run.status === "running" ? "Waiting for the first agent…" : "This run has no agent calls."));
    if (hadFocus || state.wantFocus) focusNode(state.selected);
  }

  // Focus the node's row; asked before the tree has one (a key pressed as the run opens), the
  // tree's first row, as soon as it has one.
  function focusNode(id) {
    const row = $(`#tree [data-node-id="${id}"]`);
    state.wantFocus = !row;
    if (row) {
      row.focus({ preventScroll: false });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function select(id, focus = true) {
    state.selected = id;
    renderTree();
    renderDetails();
    if (focus) focusNode(id);
  }

  $("#tree").addEventListener("click", (event) => {
    const row = event.target.closest("[data-node-id]");
    if (!row) return;
    const id = Number(row.dataset.nodeId);
    if (event.target.closest(".caret")) toggle(id, !state.collapsed.has(id));
    else select(id);
  });

  function toggle(id, close) {
    if (close) state.collapsed.add(id);
    else state.collapsed.delete(id);
    renderTree();
    focusNode(id);
  }

  $("#tree").addEventListener("keydown", (event) => {
    if (!state.model) return;
    const shown = visibleNodes();
    const at = shown.findIndex(([node]) => node.id === state.selected);
    if (at < 0) return;
    const [node] = shown[at];
    const move = (index) => select(shown[Math.max(0, Math.min(shown.length - 1, index))][0].id);
    switch (event.key) {
      case "ArrowDown": move(at + 1); break;
      case "ArrowUp": move(at - 1); break;
      case "Home": move(0); break;
      case "End": move(shown.length - 1); break;
      case "ArrowRight":
        if (node.children.length && state.collapsed.has(node.id)) toggle(node.id, false);
        else if (node.children.length) move(at + 1);
        break;
      case "ArrowLeft":
        if (node.children.length && !state.collapsed.has(node.id)) toggle(node.id, true);
        else if (node.parent != null && state.model.nodes.has(node.parent)) select(node.parent);
        break;
      case "Enter":
      case " ":
        $("#details").focus();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  function showPath(which) {
    const model = state.model;
    if (!model || !model.roots.length) return;
    model.sums();
    const path = model.path(which === "slowest" ? (node) => node.sum.seconds : (node) => node.sum.cost);
    state.path = new Set(path.map((node) => node.id));
    for (const node of path) state.collapsed.delete(node.id);
    const last = path[path.length - 1];
    say(`${which === "slowest" ? "The slowest branch" : "The most expensive branch"}: ${path.map((node) => node.name).join(" › ")} (${which === "slowest" ? seconds(path[0].sum.seconds) : dollars(path[0].sum.cost)})`);
    select(last.id);
  }

  $("#slowest").addEventListener("click", () => showPath("slowest"));
  $("#costliest").addEventListener("click", () => showPath("costliest"));
  $("#to-compare").addEventListener("click", () => go({ left: state.model.run.forked_from, right: state.model.run.id }));

  // -- the selected node's details -------------------------------------------------------

  function messageView(shown) {
    const message = shown.message;
    return el("div", { class: "message" },
      el("div", { class: "class" }, message ? message.class : "message", shown.error ? " · failed" : ""),
      shown.error ? el("div", { class: "error" }, errorText(shown.error)) : el("pre", {}, message ? message.text : ""));
  }

  function requestView(request) {
    const items = [];
    if (request.system) items.push(el("div", { class: "message" }, el("div", { class: "class" }, "system"), el("pre", {}, request.system)));
    for (const item of request.messages || []) {
      const label = item.call ? `${item.role} · calls ${item.call}` : item.result ? `tool result · ${item.result}` : item.role || "item";
      const text = item.call ? JSON.stringify(item.arguments) : item.text ?? JSON.stringify(item);
      items.push(el("div", { class: "message" }, el("div", { class: "class" }, label), el("pre", {}, text)));
    }
    if ((request.tools || []).length) items.push(el("p", { class: "muted" }, "Tools: " + request.tools.map((tool) => tool.name).join(", ")));
    return items;
  }

  function callView(call, forkable) {
    const how = call.finish ? (call.finish.replayed ? "replayed" : "live") : call.error ? "failed" : "running";
    const facts = [call.model];
    if (call.items.length) facts.push("first token +" + seconds(call.items[0][0] - call.started));
    if (call.ended) facts.push(seconds(call.ended - call.started));
    if (call.finish) facts.push(`${call.finish.input_tokens ?? "?"} → ${call.finish.output_tokens ?? "?"} tok`);
    if (call.cost !== null) facts.push(dollars(call.cost));
    const tools = call.items.filter(([, item]) => Array.isArray(item) && item[0] === "call").map(([, item]) => item[2]);
    const buttons = [];
    // (a call the cache cannot key, or a realtime session's reply, cannot be forked: said why)
    const realtime = Boolean(call.request && call.request.realtime);
    const unforkable = call.key === null || call.key === undefined
      ? "Cannot be forked: " + (call.unkeyed || "the call cache cannot key it.")
      : realtime ? "A reply of a realtime session: a fork replays the session whole, from its recording in a call cache, so its replies cannot be edited." : null;
    if (unforkable) forkable = false;
    if (forkable && call.finish) buttons.push(el("button", { type: "button", class: "edit-reply", "data-call": call.id, onclick: () => openFork(call, "reply") }, "Edit reply and fork…"));
    if (forkable) buttons.push(el("button", { type: "button", class: "edit-prompt", "data-call": call.id, onclick: () => openFork(call, "prompt") }, "Edit prompt and fork…"));
    return el("section", { class: "call", "data-call": call.id, "aria-label": `Call ${call.id} of the model` },
      el("header", {}, el("strong", {}, `Call ${call.id}`), el("span", { class: `badge ${how}` }, how), el("span", { class: "muted" }, facts.join(" · "))),
      el("details", {}, el("summary", {}, "The request"), ...requestView(call.request)),
      el("pre", { class: "reply-text" }, call.text || (tools.length ? "(calls " + tools.join(", ") + ")" : call.ended ? "(no text)" : "…")),
      call.error ? el("div", { class: "errorbox" }, errorText(call.error)) : null,
      unforkable ? el("p", { class: "unkeyed muted" }, unforkable) : null,
      buttons.length ? el("div", { class: "buttons" }, buttons) : null);
  }

  let detailsShown = null;
  function renderDetails() {
    const panel = $("#details");
    const model = state.model;
    const node = model && model.nodes.get(state.selected);
    if (!node) {
      panel.replaceChildren(el("p", { class: "muted" }, "Select a node of the tree."));
      return;
    }
    // (keep the reader's place and open <details> while the node streams)
    const open = detailsShown === node.id ? $$("details", panel).map((part) => part.open) : [];
    const scroll = panel.scrollTop;
    const first = node.calls.length && node.calls[0].items.length ? node.calls[0].items[0][0] : node.replies.length ? node.replies[0].entered : null;
    const facts = [
      ["Started", clock(node.started)],
      ["First token", first ? "+" + seconds(first - node.started) : "—"],
      ["Ended", node.ended ? "+" + seconds(node.ended - node.started) : "running"],
      ["Time", seconds(node.sum.seconds)],
      ["Tokens", `${node.sum.input} in, ${node.sum.output} out (this branch)`],
      ["Cost", dollars(node.sum.cost) + " (this branch)"],
    ];
    const parts = [
      el("h3", {}, node.name, " ", el("small", { class: "muted" }, `${node.kind} #${node.id}`)),
      el("dl", { class: "facts" }, facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
    ];
    if (node.error) parts.push(el("div", { class: "errorbox", role: "note" }, errorText(node.error)));
    if (node.kind === "tool") {
      parts.push(el("h4", {}, "Arguments"), el("pre", {}, node.arguments || ""));
      if (node.decision) parts.push(el("h4", {}, "Decision"), el("p", {}, `${node.decision.approved ? "approved" : "denied"}${node.decision.decided_by ? " by " + node.decision.decided_by : ""}${node.decision.reason ? ": " + node.decision.reason : ""}`));
      if (node.result) parts.push(el("h4", {}, "Result"), el("pre", {}, node.result.text));
    }
    if (node.inputs.length) parts.push(el("h4", {}, "Input"), ...node.inputs.map(messageView));
    if (node.calls.length) parts.push(el("h4", {}, "Calls of the model"), ...node.calls.map((call) => callView(call, model.run.forkable)));
    if (node.replies.length) parts.push(el("h4", {}, "Replies"), ...node.replies.map(messageView));
    const hadFocus = panel.contains(document.activeElement) && document.activeElement !== panel ? document.activeElement : null;
    const focusKey = hadFocus ? [hadFocus.className, hadFocus.dataset.call] : null;
    panel.replaceChildren(...parts);
    if (detailsShown === node.id) {
      $$("details", panel).forEach((part, index) => { part.open = Boolean(open[index]); });
      panel.scrollTop = scroll;
      if (focusKey && focusKey[1]) $(`#details button.${focusKey[0].split(" ")[0]}[data-call="${focusKey[1]}"]`)?.focus();
    }
    detailsShown = node.id;
  }

  // -- forking ---------------------------------------------------------------------------

  let forking = null;
  function openFork(call, edit) {
    forking = call;
    const dialog = $("#fork-dialog");
    $("#fork-title").textContent = `Fork at call ${call.id}`;
    $("#fork-about").textContent = `${state.model.run.name} · ${state.model.run.id} · ${call.model}`;
    $("#fork-error").textContent = "";
    for (const radio of $$("input[name=edit]", dialog)) {
      radio.checked = radio.value === edit;
      radio.disabled = radio.value === "reply" && !call.finish;
    }
    fillEdit();
    dialog.showModal();
    $("#fork-text").focus();
  }

  function chosenEdit() {
    return $("input[name=edit]:checked", $("#fork-dialog")).value;
  }

  function fillEdit() {
    const call = forking;
    const edit = chosenEdit();
    const messages = (call.request.messages || []).filter((item) => typeof item.text === "string" && item.role);
    $("#fork-text").value = edit === "reply" ? call.text : edit === "system" ? call.request.system || "" : messages.length ? messages[messages.length - 1].text : "";
  }

  for (const radio of $$("#fork-dialog input[name=edit]")) radio.addEventListener("change", fillEdit);
  $("#fork-cancel").addEventListener("click", () => $("#fork-dialog").close());
  $("#fork-go").addEventListener("click", () => submitFork());
  $("#fork-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submitFork();
    }
  });

  async function submitFork() {
    const call = forking;
    const run = state.model.run;
    const body = { call: call.id, [chosenEdit()]: $("#fork-text").value };
    $("#fork-go").disabled = true;
    try {
      const started = await api(`api/runs/${encodeURIComponent(run.id)}/fork`, { method: "POST", body: JSON.stringify(body) });
      $("#fork-dialog").close();
      say(`Forked ${run.id} at call ${call.id}: the run ${started.run} runs.`);
      go({ left: run.id, right: started.run });
    } catch (error) {
      $("#fork-error").textContent = error.message;
    } finally {
      $("#fork-go").disabled = false;
    }
  }

  // -- two runs side by side -------------------------------------------------------------

  async function openCompare(left, right) {
    stopFollowing();
    state.model = null;
    show("compare");
    $("#compare-summary").textContent = "Running the fork…";
    $("#fork-output").hidden = true;
    const controller = new AbortController();
    state.compare = { left, right, controller };
    $("#open-left").onclick = () => go({ run: left });
    $("#open-right").onclick = () => go({ run: right });
    let pending = null;
    const refresh = () => {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        renderCompare(left, right).catch((error) => say(error.message));
      }, 250);
    };
    follow(right, {
      signal: controller.signal,
      onEvents: refresh,
      onEnd() {
        if (!controller.signal.aborted) {
          renderCompare(left, right).catch((error) => say(error.message));
          loadRuns().catch(() => {});
        }
      },
      async onError(error) {
        say(error.message);
        const fork = await api(`api/forks/${encodeURIComponent(right)}`).catch(() => null);
        if (fork && fork.output) {
          $("#fork-output").hidden = false;
          $("#fork-output").textContent = fork.output;
        }
      },
    });
  }

  async function renderCompare(left, right) {
    const diff = await api(`api/diff?left=${encodeURIComponent(left)}&right=${encodeURIComponent(right)}`);
    if (!state.compare || state.compare.right !== right) return;
    $("#left-head").textContent = `${diff.left.name} · ${diff.left.id}`;
    $("#right-head").textContent = `${diff.right.name} · ${diff.right.id}`;
    const status = $("#compare-status");
    status.className = `badge ${diff.right.status}`;
    status.textContent = diff.right.status;
    const counts = { same: 0, changed: 0, added: 0, removed: 0 };
    const hows = { replayed: 0, edited: 0, live: 0 };
    for (const row of diff.rows) {
      counts[row.status]++;
      for (const [, how] of row.calls) hows[how]++;
    }
    $("#compare-summary").textContent = `${counts.same} same, ${counts.changed} changed, ${counts.added} added, ${counts.removed} removed · the second run's model calls: ${hows.replayed} replayed, ${hows.edited} edited, ${hows.live} made live` + (diff.right.status === "running" ? " · still running" : "");
    const side = (summary, pieces, keep) => {
      if (!summary) return el("td", { class: "muted" }, "—");
      const shown = pieces.length ? pieces.filter(([op]) => op === "=" || op === keep).map(([op, text]) => (op === "=" ? text : el(keep === "-" ? "del" : "ins", {}, text))) : [summary.reply];
      return el("td", {},
        el("div", { class: "reply" }, shown),
        summary.error ? el("div", { class: "error" }, errorText(summary.error)) : null,
        el("div", { class: "muted" }, `#${summary.id} · ${seconds(summary.seconds)}${summary.cost_usd ? " · " + dollars(summary.cost_usd) : ""}`));
    };
    const rows = diff.rows.map((row) => {
      const right = side(row.right, row.text, "+");
      if (row.calls.length) right.append(el("div", { class: "calls" }, row.calls.map(([number, how]) => el("span", { class: `badge ${how}` }, `call ${number} ${how}`))));
      const head = el("th", { scope: "row" }, el("span", { class: "muted" }, "· ".repeat(row.depth)), el("span", { class: "kind" }, row.kind), " ", row.name, " ", el("span", { class: `badge ${row.status}` }, row.status));
      return el("tr", { class: row.status, "data-status": row.status }, head, side(row.left, row.text, "-"), right);
    });
    $("#diff tbody").replaceChildren(...rows);
  }

  // -- where the page is -----------------------------------------------------------------

  function show(view) {
    $("#empty-view").hidden = view !== "empty";
    $("#run-view").hidden = view !== "run";
    $("#compare-view").hidden = view !== "compare";
  }

  function go(params) {
    history.pushState(null, "", "?" + new URLSearchParams(params));
    route();
  }

  function route() {
    const query = new URLSearchParams(location.search);
    const done = (promise) => promise.catch((error) => say(error.message));
    if (query.get("left") && query.get("right")) done(openCompare(query.get("left"), query.get("right")));
    else if (query.get("run")) done(openRun(query.get("run")));
    else {
      stopFollowing();
      state.model = null;
      show("empty");
      renderRuns();
    }
  }

  window.addEventListener("popstate", route);

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, dialog, select") || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = {
      r: () => ($("#runs button[aria-current=true]") || $("#runs button"))?.focus(),
      t: () => focusNode(state.selected),
      d: () => $("#details").focus(),
      s: () => showPath("slowest"),
      c: () => showPath("costliest"),
      "?": () => $("#help-dialog").showModal(),
    };
    const act = keys[event.key];
    if (!act || ((event.key === "s" || event.key === "c" || event.key === "t") && !state.model)) return;
    event.preventDefault();
    act();
  });
  $("#help-close").addEventListener("click", () => $("#help-dialog").close());

  if (!token) {
    $("#empty-text").textContent = "Open the address that miniagents studio printed (it ends with #token=…): the studio needs its token.";
    return;
  }
  loadRuns().then(route, (error) => {
    say(error.message);
    $("#empty-text").textContent = "The studio did not take this page's token: open the address that miniagents studio printed.";
  });
  setInterval(() => { if (!document.hidden) loadRuns().catch(() => {}); }, 5000);
})();
