"""The report page: one self-contained HTML file (inline script, style, SVG plots and data; no network).

    html = render(gather("runs/tiny"))      # str

Everything a model wrote is untrusted. The summary and plots are HTML made here with every value escaped; the
trees, pairs and RFT examples travel as gzip-compressed, base64-encoded JSON inside
`<script type="application/json">` blocks (the base64 alphabet cannot close a tag) and the page's script shows
them with `textContent` only, never as markup. A Content-Security-Policy allows only the page's own script (by
its hash), inline styles and nothing from any address, so even a mistake here could not load or run anything.

Large runs: the data is compressed (a refinement is stored as its word diff against its parent, and gzip
takes most of the rest), decoded only when its tab is opened, and shown 50 items a page. If the page would still
exceed `max_bytes`, long texts are cut in the data (each cut is flagged, and the page names the file and line of
the full text) at the largest length that fits.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import random
from importlib import resources
from typing import Any

from spar.report.build import STAGES, RunData
from spar.report.diff import word_diff
from spar.report.plots import PLOTS, all_plots

MARKER = "<!-- spar report -->"  # the second line of every report: `spar report` overwrites only files with it
MAX_BYTES = 24_000_000
# How much text a page keeps, tried in order until it fits: (responses, critiques, each vote's critique) in
# characters, None = whole, 0 = left out. Vote critiques go first: with 5 votes a node they are most of a run's
# text, and the node's majority critique and the vote counts stay.
LEVELS = ((None, None, None), (None, None, 400), (None, 2000, 150), (4000, 1000, 0), (1500, 500, 0),
          (600, 300, 0), (200, 100, 0))
VOTE_CHUNK = 500  # trees whose vote critiques share one data block
RFT_PER_GROUP = 12  # RFT examples shown per (iteration, kind, source, label)


def pack(obj: Any) -> str:
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def unpack(text: str) -> Any:
    """The inverse of `pack` (tests and tools read a report's data with it)."""
    return json.loads(gzip.decompress(base64.b64decode(text)))


def _cut(text: Any, cap: int | None) -> tuple[str, int]:
    """(text, original length if cut else 0)."""
    text = text if isinstance(text, str) else "" if text is None else str(text)
    return (text[:cap], len(text)) if cap is not None and len(text) > cap else (text, 0)


def tree_data(trees: list[dict], level: tuple = LEVELS[0], first_line: int = 1) -> tuple[list[dict], list[list]]:
    """Trees as the viewer reads them, and apart from them their votes' critiques (`votes[i][k]`: node k of tree
    i, one `[critique, cut length]` per vote). Each refinement is its word diff against its parent's text.

    The critiques of the votes are most of a run's text and are read only when a node's votes are opened, so
    they travel in separate blocks of VOTE_CHUNK trees: opening the Trees tab decodes a fraction of the data.
    `level` caps the texts (see LEVELS); `first_line` is the file line of `trees[0]`, named where a text is cut.
    """
    cap, ccap, vcap = level
    out, all_votes = [], []
    for line, x in enumerate(trees, start=first_line):
        nodes = [n for n in x.get("nodes") or [] if isinstance(n, dict)]
        index = {n.get("id"): k for k, n in enumerate(nodes)}
        texts: list[str] = []
        packed, tree_votes = [], []
        for k, n in enumerate(nodes):
            text, cut = _cut(n.get("response"), cap)
            texts.append(text)
            p = index.get(n.get("parent"), -1)
            p = p if p < k else -1  # a parent after its child (a damaged file) would make the viewer loop: a root
            verdicts, critiques = [], []
            for v in n.get("votes") or []:
                if isinstance(v, dict):
                    verdicts.append([str(v.get("verdict", "")), int(bool(v.get("truncated")))])
                    critiques.append(list(_cut(v.get("critique"), vcap)))
            critique, ccut = _cut(n.get("critique"), ccap)
            reasoning, rcut = _cut(n.get("reasoning"), ccap)
            node = {"id": str(n.get("id")), "p": p, "d": n.get("depth", 0), "v": n.get("value"),
                    "l": n.get("label", ""), "t": int(bool(n.get("truncated"))), "f": int(bool(n.get("failed"))),
                    "c": critique, "r": reasoning, "vs": verdicts}
            if 0 <= p < len(texts):
                node["o"] = word_diff(texts[p], text)
            else:
                node["x"] = text
            if cut or ccut or rcut or any(c[1] for c in critiques):
                node["cut"] = 1
            packed.append(node)
            tree_votes.append(critiques)
        out.append({"i": str(x.get("instruction_id")), "s": int(bool(x.get("success"))),
                    "b": index.get(x.get("best"), -1), "n": packed, "line": line,
                    "rc": (x.get("calls") or {}).get("refine", 0)})
        all_votes.append(tree_votes)
    return out, all_votes


def pair_data(pairs: list[dict], level: tuple = LEVELS[0]) -> list[dict]:
    cap = level[0]
    out = []
    for line, p in enumerate(pairs, start=1):
        chosen, c1 = _cut(p.get("chosen"), cap)
        rejected, c2 = _cut(p.get("rejected"), cap)
        prompt = p.get("prompt")
        user = next((m.get("content", "") for m in reversed(prompt) if isinstance(m, dict) and m.get("role") == "user"),
                    "") if isinstance(prompt, list) else str(prompt or "")
        item = {"i": str(p.get("instruction_id")), "s": str(p.get("source", "")), "e": p.get("edit_distance"),
                "q": _cut(user, cap)[0], "o": word_diff(rejected, chosen), "line": line}
        if c1 or c2:
            item["cut"] = 1
        out.append(item)
    return out


def rft_data(run: RunData, level: tuple = LEVELS[0]) -> list[dict]:
    """A seeded sample of RFT examples per iteration, kind, source and label, with each group's size."""
    groups: dict[tuple, list] = {}
    for it in run.iterations:
        for e in it.rft:
            groups.setdefault((it.t, str(e.get("kind", "")), str(e.get("source", "")), str(e.get("label", ""))),
                              []).append(e)
    out = []
    for key in sorted(groups):
        members = groups[key]
        sample = random.Random(f"report:{key}").sample(members, min(RFT_PER_GROUP, len(members)))
        out.append({"t": key[0], "kind": key[1], "source": key[2], "label": key[3], "total": len(members),
                    "examples": [[[str(m.get("role", "")), _cut(m.get("content"), level[0])[0]]
                                  for m in e.get("messages") or [] if isinstance(m, dict)] for e in sample]})
    return out


def instruction_data(run: RunData, level: tuple = LEVELS[0]) -> dict:
    return {iid: {"p": _cut(r.get("prompt"), level[0])[0], "s": str(r.get("split", "")),
                  "c": [[str(c.get("id")), c.get("kwargs") or {}] for c in r.get("constraints") or []
                        if isinstance(c, dict)]}
            for iid, r in run.instructions.items()}


def choose_level(run: RunData, budget: int, sample: int = 300) -> tuple:
    """The first of LEVELS whose data fits in `budget` bytes, estimated from a seeded sample of each iteration's
    trees and pairs (packing a 10,000-tree run once per level would take minutes)."""
    rng = random.Random(0)
    for level in LEVELS:
        size = len(pack(instruction_data(run, level))) + len(pack(rft_data(run, level)))
        for it in run.iterations:
            for items, fn in ((it.trees, tree_data), (it.pairs, pair_data)):
                if items:
                    part = rng.sample(items, min(sample, len(items)))
                    data = fn(part, level)
                    size += sum(map(len, map(pack, data if fn is tree_data else [data]))) * len(items) / len(part)
        if size <= budget:
            return level
    return LEVELS[-1]


# ---- the page ------------------------------------------------------------------------------------------------

def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:g}" if v.is_integer() else f"{v:.2f}"
    return str(v)


def _cell(row: dict, key: str, value: Any, pct: bool = False, title: str = "") -> str:
    partial = key in row.get("partial", [])
    title = title or ("counted from an unfinished stage's file" if partial else "")
    raw = "" if value is None else json.dumps(value)
    return (f'<td data-key="{_e(key)}" data-value="{_e(raw)}"' + (f' title="{_e(title)}"' if title else "")
            + (' class="partial"' if partial else "") + f">{_e(_fmt(value, pct))}{'*' if partial else ''}</td>")


DATA_COLUMNS = [  # (key, header, percent?)
    ("instructions", "instructions", False), ("negatives", "negatives", False), ("trees", "trees", False),
    ("search_success", "search success", True), ("refinements_per_tree", "refinements / tree", False),
    ("refinement_pairs", "pairs: refined", False), ("sampled_pairs", "pairs: sampled", False),
    ("refinement_edit_distance", "edit distance: refined", False),
    ("sampled_edit_distance", "edit distance: sampled", False),
    ("rft_refine", "RFT refine", False), ("rft_judge_yes", "RFT judge yes", False),
    ("rft_judge_no", "RFT judge no", False), ("truncated_responses", "cut: responses", False),
    ("truncated_refinements", "cut: refinements", False), ("pairs_truncated_skipped", "cut: pairs skipped", False),
    ("rft_truncated_skipped", "cut: RFT skipped", False),
]
SCORE_KEYS = [("heldout_prompt_level", "held-out prompt"), ("heldout_inst_level", "held-out instruction"),
              ("ifeval_average", "IFEval average"), ("ifeval_prompt_strict", "IFEval prompt strict")]


def summary_tables(run: RunData) -> str:
    rows = run.rows()
    if not rows:
        return '<p class="missing">No iteration has started: nothing to summarize yet.</p>'
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in DATA_COLUMNS)
    body = "".join(
        f'<tr data-iteration="{r["iteration"]}"><th>{r["iteration"]}</th>'
        + "".join(_cell(r, k, r.get(k), pct, json.dumps(r["rft_by_source"]) if k.startswith("rft_judge") else "")
                  for k, _, pct in DATA_COLUMNS) + "</tr>" for r in rows)
    out = [f'<h3>Self-play data per iteration</h3><div class="scroll"><table id="summary-data"><thead><tr>'
           f'<th>iteration</th>{head}</tr></thead><tbody>{body}</tbody></table></div>']
    keys = [(k, h) for k, h in SCORE_KEYS if k in run.before or any(k in r["after"] for r in rows)]
    if keys:
        head = "".join(f"<th>{_e(h)} before</th><th>{_e(h)} after</th>" for _, h in keys)
        body = "".join(
            f'<tr data-iteration="{r["iteration"]}"><th>{r["iteration"]}</th>'
            + "".join(_cell(r, f"{k}_before", r["before"].get(k), True)
                      + _cell(r, f"{k}_after", r["after"].get(k), True)
                      for k, _ in keys) + "</tr>" for r in rows)
        out.append(f'<h3>Held-out scores (before = the model the iteration started from)</h3><div class="scroll">'
                   f'<table id="summary-scores"><thead><tr><th>iteration</th>{head}</tr></thead>'
                   f'<tbody>{body}</tbody></table></div>')
    stages = [s for s in STAGES if any(s in r["seconds"] for r in rows)]
    if stages:
        head = "".join(f"<th>{_e(s)}</th>" for s in stages)
        body = "".join(f'<tr data-iteration="{r["iteration"]}"><th>{r["iteration"]}</th>'
                       + "".join(_cell(r, f"seconds_{s}", r["seconds"].get(s)) for s in stages)
                       + _cell(r, "seconds_total", round(sum(r["seconds"].values()), 1)) + "</tr>" for r in rows)
        out.append(f'<h3>Wall time by stage (seconds)</h3><div class="scroll"><table id="summary-seconds"><thead><tr>'
                   f'<th>iteration</th>{head}<th>total</th></tr></thead><tbody>{body}</tbody></table></div>')
    return "".join(out)


def plots_html(run: RunData) -> str:
    parts = []
    for name, (svg, reason) in all_plots(run).items():
        title = PLOTS[name][0]
        inner = svg if svg else f'<p class="missing">{_e(reason)}</p>'
        parts.append(f'<figure class="plot" id="plot-{name}" data-drawn="{int(bool(svg))}">'
                     f'<figcaption>{_e(title)}</figcaption>{inner}</figure>')
    return "".join(parts)


def experiments_html(run: RunData) -> str:
    """The experiments found in RUN/experiments/: each one's tables and plots."""
    from spar.report.plots import _prefix_ids

    parts = []
    for k, ex in enumerate(run.experiments):
        tables = "".join(f'<pre class="text" title="{_e(name)}">{_e(text)}</pre>' for name, text in ex.tables)
        plots = "".join(f'<figure class="plot"><figcaption>{_e(name)}</figcaption>'
                        f'{_prefix_ids(text[text.index("<svg"):], f"ex{k}-{n}-")}</figure>'
                        for n, (name, text) in enumerate(ex.plots))
        parts.append(f'<section class="experiment" id="experiment-{_e(ex.name)}"><h3>{_e(ex.name)}</h3>'
                     f'{tables}<div class="plots">{plots}</div></section>')
    return f'<h2>Experiments</h2>{"".join(parts)}' if parts else ""


def _asset(name: str) -> str:
    return resources.files("spar.report").joinpath(name).read_text(encoding="utf-8")


def render(run: RunData, max_bytes: int = MAX_BYTES) -> str:
    """The whole page; texts are cut (and flagged) only if the page would exceed `max_bytes`."""
    tables, plots, experiments = summary_tables(run), plots_html(run), experiments_html(run)
    static = tables + plots + experiments
    level = choose_level(run, max_bytes - len(static) - 200_000)
    while True:
        blobs = {"instructions": pack(instruction_data(run, level)), "rft": pack(rft_data(run, level))}
        for it in run.iterations:
            trees, votes = tree_data(it.trees, level)
            blobs[f"trees-{it.t}"] = pack(trees)
            for k in range(0, len(votes), VOTE_CHUNK):
                blobs[f"votes-{it.t}-{k // VOTE_CHUNK}"] = pack(votes[k:k + VOTE_CHUNK])
            blobs[f"pairs-{it.t}"] = pack(pair_data(it.pairs, level))
        # the estimate is from a sample: should the page still not fit, cut one level further
        if sum(map(len, blobs.values())) + len(static) + 200_000 <= max_bytes or level == LEVELS[-1]:
            break
        level = LEVELS[LEVELS.index(level) + 1]
    meta = {"name": run.name, "vote_chunk": VOTE_CHUNK, "root": str(run.root),
            "iterations": [it.t for it in run.iterations],
            "partial": {str(it.t): sorted(it.partial) for it in run.iterations}, "level": level,
            "counts": {str(it.t): {"trees": len(it.trees), "pairs": len(it.pairs), "rft": len(it.rft)}
                       for it in run.iterations}}
    blobs["meta"] = pack(meta)
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
           f"connect-src 'none'; form-action 'none'; base-uri 'none'")
    notes = "".join(f"<li>{_e(n)}</li>" for n in run.notes)
    if level != LEVELS[0]:
        what = [f"{name} to {n} characters" if n else f"{name} left out"
                for name, n in zip(("responses", "critiques", "each vote's critique"), level) if n is not None]
        notes += (f"<li>To keep this page under {max_bytes / 1e6:g} MB, texts are cut: {', '.join(what)}. "
                  f"Each cut item names the file and line of its full text.</li>")
    data = "\n".join(f'<script type="application/json" id="data-{k}">{v}</script>' for k, v in blobs.items())
    config = (f'<details><summary>config.yaml</summary><pre class="text">{_e(run.config_text)}</pre></details>'
              if run.config_text else "")
    return f"""<!DOCTYPE html>
{MARKER}
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SPaR run {_e(run.name)}</title>
<style>{_asset("report.css")}</style></head>
<body>
<header><h1>SPaR run <code>{_e(run.name)}</code></h1><p class="path">{_e(run.root)}</p>{config}
{f'<section id="notes"><h2>Missing or unfinished</h2><ul>{notes}</ul></section>' if notes else ''}
<nav id="tabs"><button data-tab="summary" class="active">Summary &amp; plots</button>
<button data-tab="trees">Trees</button>
<button data-tab="pairs">Pairs</button><button data-tab="rft">RFT examples</button></nav></header>
<main>
<section id="tab-summary" class="tab"><h2>Summary</h2>{tables}<h2>Plots</h2>
<div id="plots">{plots}</div>{experiments}</section>
<section id="tab-trees" class="tab" hidden><h2>Refinement trees</h2>
<div class="controls"><label>iteration <select id="tree-iter"></select></label>
<label>status <select id="tree-status"><option value="all">all</option><option value="ok">succeeded</option>
<option value="failed">failed</option></select></label>
<label>constraint <select id="tree-cons"><option value="">any</option></select></label>
<label>search <input id="tree-q" type="search" placeholder="text in prompt or any node"></label>
<span id="tree-count" class="count"></span></div>
<div id="tree-pager" class="pager"></div><div id="tree-list"></div></section>
<section id="tab-pairs" class="tab" hidden><h2>Preference pairs (rejected → chosen)</h2>
<div class="controls"><label>iteration <select id="pair-iter"></select></label>
<label>source <select id="pair-source"><option value="">any</option></select></label>
<label>search <input id="pair-q" type="search" placeholder="text in prompt, chosen or rejected"></label>
<span id="pair-count" class="count"></span></div>
<div id="pair-pager" class="pager"></div><div id="pair-list"></div></section>
<section id="tab-rft" class="tab" hidden><h2>RFT examples (a sample of each kind)</h2>
<div class="controls"><label>iteration <select id="rft-iter"></select></label>
<label>kind <select id="rft-kind"><option value="">any</option><option value="refine">refine</option>
<option value="judge">judge</option></select></label></div><div id="rft-list"></div></section>
</main>
{data}
<script>{script}</script>
</body></html>
"""
