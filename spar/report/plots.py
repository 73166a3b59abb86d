"""The report's plots, drawn by matplotlib and inlined as SVG text (no image files, no network).

Each function takes the gathered run (spar/report/build.py) and returns `(svg, None)`, or `(None, reason)` when
the run has nothing to plot yet; the page shows the reason in the plot's place.

  heldout_scores     held-out (and IFEval) scores of the base model and after each iteration
  ifeval_per_id      IFEval strict accuracy per instruction id, base model vs the last iteration's
  search_by_depth    share of trees solved by depth d, and refinements per tree at each depth
  edit_distances     histograms of chosen-rejected edit distance, refined vs sampled pairs
"""

from __future__ import annotations

import io
import re
from typing import Callable

from spar.report.build import RunData

Plot = tuple[str | None, str | None]
COLORS = {"refinement": "#1b7837", "sampled": "#b35806", "before": "#999999", "after": "#2166ac"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display: render to strings only
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none",  # text stays text: smaller, searchable, crisp
                         "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig, name: str) -> str:
    plt = _pyplot()
    # a fixed salt: the same run gives the same bytes (matplotlib otherwise draws random element ids)
    with plt.rc_context({"svg.hashsalt": "spar"}):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", buf.getvalue(), flags=re.S)  # RDF boilerplate: not needed
    return _prefix_ids(text[text.index("<svg"):], f"{name}-")  # no XML prolog or doctype: it sits inline in HTML


def heldout_scores(run: RunData) -> Plot:
    points = [("base", run.before)] + [(f"iter {it.t}", it.stages.get("eval", {}).get("scores", {}))
                                       for it in run.iterations if it.stages.get("eval", {}).get("status") == "done"]
    keys = [k for k in ("heldout_prompt_level", "heldout_inst_level", "ifeval_average", "ifeval_prompt_strict")
            if any(k in s for _, s in points)]
    if len(points) < 2 or not keys:
        return None, "no scores yet: the base model and at least one iteration must have been evaluated"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = list(range(len(points)))
    for k in keys:
        ys = [s.get(k) for _, s in points]
        ax.plot([x for x, y in zip(xs, ys) if y is not None], [100 * y for y in ys if y is not None],
                marker="o", label=k.replace("_", " "))
    ax.set_xticks(xs, [p for p, _ in points])
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Held-out scores by iteration")
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig, "heldout"), None


def ifeval_per_id(run: RunData) -> Plot:
    before, after = run.ifeval.get("before"), run.ifeval.get("after")
    if not before or not after:
        return None, "no IFEval data: run with --eval-data ifeval.jsonl to score IFEval before and after"
    ids = sorted(set(before) | set(after))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(ids) + 1))
    ys = range(len(ids))
    for off, key in ((-0.2, "before"), (0.2, "after")):
        per = run.ifeval[key]
        ax.barh([y + off for y in ys], [100 * per.get(i, {}).get("strict", 0) for i in ids], height=0.4,
                color=COLORS[key], label=f"{key} ({'base' if key == 'before' else 'last iteration'})")
    ax.set_yticks(list(ys), [f"{i} ({int(after.get(i, before.get(i, {})).get('count', 0))})" for i in ids],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("strict accuracy (%)")
    ax.set_title("IFEval accuracy per instruction id")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return _svg(fig, "ifeval"), None


def search_by_depth(run: RunData) -> Plot:
    its = [it for it in run.iterations if it.trees]
    if not its:
        return None, "no trees yet: the search stage has not written any"
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
    for it in its:
        max_depth = max((n.get("depth", 0) for x in it.trees for n in x.get("nodes", [])), default=0)
        solved_at = []  # depth of the accepted refinement of each successful tree
        per_depth = [0] * (max_depth + 1)  # refinements made at each depth, summed over trees
        for x in it.trees:
            nodes = {n.get("id"): n for n in x.get("nodes", [])}
            for n in x.get("nodes", []):
                if n.get("depth", 0) > 0:
                    per_depth[n["depth"]] += 1
            if x.get("success") and x.get("best") in nodes:
                solved_at.append(nodes[x["best"]].get("depth", 0))
        depths = list(range(1, max_depth + 1)) or [1]
        a1.plot(depths, [100 * sum(d <= k for d in solved_at) / len(it.trees) for k in depths], marker="o",
                label=f"iter {it.t}")
        a2.plot(depths, [per_depth[k] / len(it.trees) if k < len(per_depth) else 0 for k in depths], marker="o",
                label=f"iter {it.t}")
    a1.set(xlabel="depth", ylabel="trees solved by this depth (%)", title="Search success by depth")
    a2.set(xlabel="depth", ylabel="refinements per tree", title="Refinements per tree at each depth")
    for a in (a1, a2):
        a.xaxis.get_major_locator().set_params(integer=True)
        a.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _svg(fig, "depth"), None


def edit_distances(run: RunData) -> Plot:
    by_source: dict[str, list[int]] = {}
    for it in run.iterations:
        for p in it.pairs:
            if isinstance(p.get("edit_distance"), (int, float)):
                by_source.setdefault(str(p.get("source")), []).append(p["edit_distance"])
    if not by_source:
        return None, "no pairs yet: no tree succeeded and no sample was judged right"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    top = max(max(v) for v in by_source.values())
    bins = min(40, max(5, int(top) + 1))
    for source, values in sorted(by_source.items()):
        ax.hist(values, bins=bins, range=(0, max(1, top)), histtype="step", linewidth=1.5,
                color=COLORS.get(source), label=f"{source} (n={len(values)}, mean {sum(values) / len(values):.1f})")
    ax.set(xlabel="edit distance chosen vs rejected (words)", ylabel="pairs",
           title="Edit distance of pairs, all iterations")
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig, "edit"), None


PLOTS: dict[str, tuple[str, Callable[[RunData], Plot]]] = {
    "heldout": ("Held-out scores", heldout_scores),
    "ifeval": ("IFEval per instruction id", ifeval_per_id),
    "depth": ("Search by depth", search_by_depth),
    "edit": ("Edit distance, refined vs sampled pairs", edit_distances),
}


def all_plots(run: RunData) -> dict[str, Plot]:
    """Every plot by name; without matplotlib each says how to get it instead of failing the report."""
    try:
        _pyplot()
    except ImportError:
        reason = "matplotlib is not installed: pip install matplotlib (a dependency of spar-llm)"
        return {name: (None, reason) for name in PLOTS}
    return {name: fn(run) for name, (_, fn) in PLOTS.items()}


def _prefix_ids(svg: str, prefix: str) -> str:
    """Prefix every id (and its url(#...) / href references): the SVGs of one page share one id space."""
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)
