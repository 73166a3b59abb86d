// The report page's viewer: trees, pairs and RFT examples (spar/report/html.py inlines this file).
// Model text is untrusted: it reaches the page only through textContent and text nodes, never as markup.
"use strict";
(function () {
  const PAGE = 50;          // items per page
  const SHOW = 1500;        // characters of a text shown before "show all"
  const cache = {};

  // ---- data: gzip + base64 JSON blocks, decoded on first use -------------------------------------------
  function load(name) {
    if (!(name in cache)) {
      const el = document.getElementById("data-" + name);
      if (!el) { cache[name] = Promise.resolve(null); return cache[name]; }
      const bin = atob(el.textContent.trim());
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      cache[name] = new Response(stream).text().then(JSON.parse);
    }
    return cache[name];
  }

  // ---- DOM helpers --------------------------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  const $ = (id) => document.getElementById(id);

  // a long text shows its first SHOW characters and a button for the rest
  function text(s, cls) {
    s = s == null ? "" : String(s);
    const box = h("div", { class: "text " + (cls || "") });
    if (s.length <= SHOW) { box.textContent = s; return box; }
    box.append(document.createTextNode(s.slice(0, SHOW) + " …"));
    box.append(h("button", { class: "more", onclick: (ev) => { ev.stopPropagation(); box.textContent = s; } },
      `show all ${s.length} characters`));
    return box;
  }

  // a word diff, [[op, text], ...] with op "=", "-" or "+", as <del>/<ins> marks
  function diff(ops) {
    const box = h("div", { class: "text diff" });
    let shown = 0;
    const add = (from) => {
      for (let k = from; k < ops.length; k++) {
        const [op, t] = ops[k];
        box.append(op === "=" ? document.createTextNode(t) : h(op === "+" ? "ins" : "del", {}, t));
        shown += t.length;
        if (shown > SHOW && k < ops.length - 1) {
          const rest = ops.slice(k + 1).reduce((n, o) => n + o[1].length, 0);
          const more = (ev) => { ev.stopPropagation(); btn.remove(); add(k + 1); };
          const btn = h("button", { class: "more", onclick: more },
            `show the rest (${rest} characters)`);
          box.append(btn);
          shown = -Infinity;
          return;
        }
      }
    };
    add(0);
    return box;
  }
  const newText = (ops) => ops.filter((o) => o[0] !== "-").map((o) => o[1]).join("");
  const fmt = (v) => (v === null || v === undefined ? "–"
    : typeof v === "number" ? (+v.toFixed(3)).toString() : String(v));

  function pager(el, total, page, go) {
    el.textContent = "";
    const pages = Math.max(1, Math.ceil(total / PAGE));
    el.append(h("button", { disabled: page <= 0 ? "" : null, onclick: () => go(page - 1) }, "‹ previous"),
      ` page ${page + 1} of ${pages} `,
      h("button", { disabled: page >= pages - 1 ? "" : null, onclick: () => go(page + 1) }, "next ›"));
  }

  function options(select, values, labels) {
    for (const v of values) select.append(h("option", { value: String(v) }, labels ? labels(v) : String(v)));
  }

  function constraintsList(inst) {
    if (!inst || !inst.c.length) return h("p", { class: "muted" }, "no constraints");
    return h("ul", { class: "constraints" }, inst.c.map(([id, kw]) =>
      h("li", {}, h("code", {}, id), Object.keys(kw || {}).length ? " " + JSON.stringify(kw) : "")));
  }

  function cutNote(item, file) {
    return item.cut ? h("p", { class: "muted" }, `text cut to fit the page (${item.cut} characters in full): ` +
      `${file}, line ${item.line}`) : null;
  }

  let META = null, INST = {};

  // ---- trees --------------------------------------------------------------------------------------------
  const treeState = { t: null, status: "all", cons: "", q: "", page: 0, trees: [] };

  function nodeText(tree, k) {
    const n = tree.n[k];
    if (n._text === undefined) n._text = n.x !== undefined ? n.x : newText(n.o);
    return n._text;
  }

  function treeMatches(tree) {
    const s = treeState;
    if (s.status === "ok" && !tree.s) return false;
    if (s.status === "failed" && tree.s) return false;
    const inst = INST[tree.i];
    if (s.cons) {
      const ids = inst ? inst.c.map((c) => c[0]) : [];
      const group = s.cons.endsWith(":*") ? s.cons.slice(0, -1) : null;  // "keywords:*": any keywords: id
      if (!ids.some((id) => id === s.cons || (group && id.startsWith(group)))) return false;
    }
    if (s.q) {
      if (tree._q === undefined) {
        tree._q = [tree.i, inst ? inst.p : "", ...tree.n.map((_, k) => nodeText(tree, k)), ...tree.n.map((n) => n.c)]
          .join("\n").toLowerCase();
      }
      if (!tree._q.includes(s.q)) return false;
    }
    return true;
  }

  function votesLine(n) {
    const c = { yes: 0, no: 0, invalid: 0 };
    for (const v of n.vs) c[v[0]] = (c[v[0]] || 0) + 1;
    return `votes yes ${c.yes} · no ${c.no} · invalid ${c.invalid}`;
  }

  function renderNode(tree, k, isOpen) {
    const n = tree.n[k];
    const badges = [k === tree.b && tree.s ? h("span", { class: "badge ok" }, "accepted") : null,
      k === tree.b && !tree.s ? h("span", { class: "badge" }, "best") : null,
      n.t ? h("span", { class: "badge warn" }, "cut by max_new_tokens") : null,
      n.f ? h("span", { class: "badge warn" }, "unreadable refinement") : null];
    const body = h("div", { class: "node-body" });
    const head = h("div", { class: "node-head", role: "button", tabindex: "0" },
      h("span", { class: "toggle" }), ` node ${n.id} · depth ${n.d} · value ${fmt(n.v)} · ${votesLine(n)} `, badges);
    const el = h("div", { class: "node", "data-node": n.id }, head, body);
    const fill = () => {
      if (body.childNodes.length) return;
      if (n.p >= 0) {
        body.append(h("div", { class: "label" }, `refinement of node ${tree.n[n.p].id}, as a word diff`), diff(n.o));
      } else {
        body.append(h("div", { class: "label" }, "root: the negative response"), text(n.x));
      }
      if (n.c) body.append(h("div", { class: "label" }, "critique (majority)"), text(n.c, "critique"));
      if (n.r) body.append(h("div", { class: "label" }, "reasoning"), text(n.r));
      if (n.vs.length) {
        // the votes' critiques sit in their own data blocks (html.py): decoded when first opened
        const votes = h("details", { class: "votes" }, h("summary", {}, `${n.vs.length} votes`));
        votes.addEventListener("toggle", async () => {
          if (!votes.open || votes.dataset.filled) return;
          votes.dataset.filled = "1";
          const chunk = await load(`votes-${treeState.t}-${Math.floor(tree.k / META.vote_chunk)}`);
          const critiques = chunk ? chunk[tree.k % META.vote_chunk][k] : [];
          n.vs.forEach((v, j) => votes.append(h("div", { class: "vote" },
            h("span", { class: "verdict " + v[0] }, v[0] + (v[1] ? " (cut by max_new_tokens)" : "")),
            text(critiques[j] ? critiques[j][0] : ""))));
          document.body.dataset.votesReady = "1";
        });
        body.append(votes);
      }
      const cn = cutNote(n.cut ? { cut: n.cut, line: tree.line } : {}, `iter_${treeState.t}/trees.jsonl`);
      if (cn) body.append(cn);
    };
    const toggle = () => { el.classList.toggle("open"); if (el.classList.contains("open")) fill(); };
    head.addEventListener("click", toggle);
    head.addEventListener("keydown", (ev) => { if (ev.key === "Enter") toggle(); });
    if (isOpen(k)) toggle();
    const kids = tree.n.map((m, j) => [m, j]).filter(([m]) => m.p === k);
    if (kids.length) el.append(h("div", { class: "children" }, kids.map(([, j]) => renderNode(tree, j, isOpen))));
    return el;
  }

  function renderTree(tree) {
    const inst = INST[tree.i];
    const body = h("div", { class: "tree-body" });
    const head = h("div", { class: "tree-head", role: "button", tabindex: "0" },
      h("span", { class: "toggle" }),
      h("span", { class: "badge " + (tree.s ? "ok" : "bad") }, tree.s ? "succeeded" : "failed"),
      ` ${tree.i} · ${tree.n.length} nodes · ${tree.rc} refinements · `,
      `best ${fmt(tree.b >= 0 ? tree.n[tree.b].v : null)} · `,
      h("span", { class: "snippet" }, inst ? inst.p.slice(0, 140) : "(instruction not in instructions.jsonl)"));
    const el = h("div", { class: "tree", "data-id": tree.i, "data-success": String(tree.s) }, head, body);
    const toggle = () => {
      el.classList.toggle("open");
      if (!body.childNodes.length) {
        body.append(h("div", { class: "label" }, "instruction"), text(inst ? inst.p : ""), constraintsList(inst));
        // the accepted (or best) node starts open, and so does its path: the refinement a reader came for.
        // A parent always comes before its child (html.py), so these walks end.
        const path = new Set();
        for (let k = tree.b; k >= 0; k = tree.n[k].p) path.add(k);
        const open = (k) => path.has(k) || (tree.b < 0 && k === 0);
        tree.n.forEach((n, k) => { if (n.p < 0) body.append(renderNode(tree, k, open)); });
      }
    };
    head.addEventListener("click", toggle);
    head.addEventListener("keydown", (ev) => { if (ev.key === "Enter") toggle(); });
    return el;
  }

  function drawTrees() {
    const s = treeState;
    const shown = s.trees.filter(treeMatches);
    const list = $("tree-list");
    list.textContent = "";
    s.page = Math.min(s.page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    for (const tree of shown.slice(s.page * PAGE, (s.page + 1) * PAGE)) list.append(renderTree(tree));
    const count = $("tree-count");
    count.textContent = `${shown.length} of ${s.trees.length} trees` +
      ((META.partial[s.t] || []).includes("search") ? " (search unfinished)" : "");
    count.dataset.count = String(shown.length);
    pager($("tree-pager"), shown.length, s.page, (p) => { s.page = p; drawTrees(); });
  }

  async function loadTrees(t) {
    treeState.t = t;
    treeState.trees = (await load("trees-" + t)) || [];
    treeState.trees.forEach((tree, k) => { tree.k = k; });  // its place in the file: finds its votes' block
    const sel = $("tree-cons");
    sel.length = 1;
    const ids = new Set();
    for (const tree of treeState.trees) for (const c of (INST[tree.i] || { c: [] }).c) ids.add(c[0]);
    const groups = new Set([...ids].filter((id) => id.includes(":")).map((id) => id.split(":")[0] + ":*"));
    options(sel, [...groups].sort().concat([...ids].sort()));
    treeState.cons = "";
    treeState.page = 0;
    drawTrees();
  }

  // ---- pairs --------------------------------------------------------------------------------------------
  const pairState = { t: null, source: "", q: "", page: 0, pairs: [] };

  function renderPair(p) {
    const inst = INST[p.i];
    const body = h("div", { class: "pair-body" });
    const head = h("div", { class: "pair-head", role: "button", tabindex: "0" }, h("span", { class: "toggle" }),
      h("span", { class: "badge" }, p.s), ` ${p.i} · edit distance ${fmt(p.e)} · `,
      h("span", { class: "snippet" }, (inst ? inst.p : p.q).slice(0, 140)));
    const el = h("div", { class: "pair", "data-id": p.i, "data-source": p.s }, head, body);
    const toggle = () => {
      el.classList.toggle("open");
      if (body.childNodes.length) return;
      const chosen = newText(p.o), rejected = p.o.filter((o) => o[0] !== "+").map((o) => o[1]).join("");
      body.append(h("div", { class: "label" }, "instruction"), text(inst ? inst.p : p.q), constraintsList(inst),
        h("div", { class: "label" }, "rejected → chosen, as a word diff"), diff(p.o),
        h("div", { class: "cols" }, h("div", {}, h("div", { class: "label" }, "chosen"), text(chosen)),
          h("div", {}, h("div", { class: "label" }, "rejected"), text(rejected))));
      const cn = cutNote(p, `iter_${pairState.t}/pairs.jsonl`);
      if (cn) body.append(cn);
    };
    head.addEventListener("click", toggle);
    head.addEventListener("keydown", (ev) => { if (ev.key === "Enter") toggle(); });
    return el;
  }

  function drawPairs() {
    const s = pairState;
    const shown = s.pairs.filter((p) => {
      if (s.source && p.s !== s.source) return false;
      if (s.q) {
        if (p._q === undefined) {
          p._q = [p.i, INST[p.i] ? INST[p.i].p : p.q, ...p.o.map((o) => o[1])].join("\n").toLowerCase();
        }
        if (!p._q.includes(s.q)) return false;
      }
      return true;
    });
    const list = $("pair-list");
    list.textContent = "";
    s.page = Math.min(s.page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    for (const p of shown.slice(s.page * PAGE, (s.page + 1) * PAGE)) list.append(renderPair(p));
    $("pair-count").textContent = `${shown.length} of ${s.pairs.length} pairs`;
    $("pair-count").dataset.count = String(shown.length);
    pager($("pair-pager"), shown.length, s.page, (pg) => { s.page = pg; drawPairs(); });
  }

  async function loadPairs(t) {
    pairState.t = t;
    pairState.pairs = (await load("pairs-" + t)) || [];
    const sel = $("pair-source");
    sel.length = 1;
    options(sel, [...new Set(pairState.pairs.map((p) => p.s))].sort());
    pairState.source = "";
    pairState.page = 0;
    drawPairs();
  }

  // ---- RFT examples -------------------------------------------------------------------------------------
  async function drawRft() {
    const groups = (await load("rft")) || [];
    const t = $("rft-iter").value, kind = $("rft-kind").value;
    const list = $("rft-list");
    list.textContent = "";
    const mine = groups.filter((g) => String(g.t) === t && (!kind || g.kind === kind));
    if (!mine.length) list.append(h("p", { class: "muted" }, "no RFT examples in this iteration"));
    for (const g of mine) {
      list.append(h("section", { class: "rft-group", "data-kind": g.kind },
        h("h3", {}, `${g.kind} · ${g.source || "-"}${g.label ? " · " + g.label : ""}: `
          + `${g.examples.length} of ${g.total} shown`),
        g.examples.map((msgs) => h("details", { class: "rft" },
          h("summary", {}, (msgs.length ? msgs[msgs.length - 1][1] : "").slice(0, 140)),
          msgs.map(([role, content]) =>
            h("div", { class: "msg" }, h("div", { class: "label" }, role), text(content)))))));
    }
  }

  // ---- tabs and controls --------------------------------------------------------------------------------
  const started = {};
  async function showTab(name) {
    for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
    for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + name;
    if (started[name]) return;
    started[name] = true;
    const last = META.iterations.length ? String(META.iterations[META.iterations.length - 1]) : "";
    if (name === "trees") { $("tree-iter").value = last; if (last) await loadTrees(last); else drawTrees(); }
    if (name === "pairs") { $("pair-iter").value = last; if (last) await loadPairs(last); else drawPairs(); }
    if (name === "rft") { $("rft-iter").value = last; await drawRft(); }
    document.body.dataset[name + "Ready"] = "1";
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...a) => { clearTimeout(timer); timer = setTimeout(() => fn(...a), ms); };
  }

  async function main() {
    META = await load("meta");
    INST = (await load("instructions")) || {};
    for (const id of ["tree-iter", "pair-iter", "rft-iter"]) options($(id), META.iterations, (t) => "iteration " + t);
    for (const b of document.querySelectorAll("#tabs button")) {
      b.addEventListener("click", () => showTab(b.dataset.tab));
    }
    $("tree-iter").addEventListener("change", (ev) => loadTrees(ev.target.value));
    const setTrees = (key) => (ev) => { treeState[key] = ev.target.value; treeState.page = 0; drawTrees(); };
    $("tree-status").addEventListener("change", setTrees("status"));
    $("tree-cons").addEventListener("change", setTrees("cons"));
    $("tree-q").addEventListener("input", debounce((ev) => {
      treeState.q = ev.target.value.trim().toLowerCase(); treeState.page = 0; drawTrees();
    }, 150));
    $("pair-iter").addEventListener("change", (ev) => loadPairs(ev.target.value));
    $("pair-source").addEventListener("change", (ev) => {
      pairState.source = ev.target.value; pairState.page = 0; drawPairs();
    });
    $("pair-q").addEventListener("input", debounce((ev) => {
      pairState.q = ev.target.value.trim().toLowerCase(); pairState.page = 0; drawPairs();
    }, 150));
    $("rft-iter").addEventListener("change", drawRft);
    $("rft-kind").addEventListener("change", drawRft);
    const hash = location.hash.slice(1);
    if (["trees", "pairs", "rft"].includes(hash)) await showTab(hash);
    document.body.dataset.ready = "1";
  }

  main().catch((e) => {
    document.body.dataset.ready = "error";
    const p = h("p", { class: "error" }, "This report could not read its data: " + e);
    document.body.prepend(p);
    throw e;
  });
})();
