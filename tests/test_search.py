"""BFS and DFS exactly as the paper defines them, pinned with a scripted refiner and a table judge."""

import re

import pytest

from spar.backends import make_backend
from spar.backends.scripted import ScriptedBackend
from spar.judge import LLMJudge, Verdict, make_judge
from spar.records import Instruction
from spar.search.engine import Root, search_trees
from spar.search.tree import SearchConfig, path_to


def refiner(broken=()):
    """Child i of a response R is 'R.i', wrapped in markers unless listed in `broken`."""
    def respond(chat, i):
        parent = re.search(r"\[Response\]\n(.*?)\n", chat[0]["content"]).group(1)
        child = f"{parent}.{i}"
        return child if child in broken else f"change it\n<refined>{child}</refined>"
    return ScriptedBackend(respond=respond)


class TableJudge:
    """value = table[response] (0 when absent); records each batch it is asked."""

    def __init__(self, table):
        self.table, self.batches = table, []

    def judge(self, items):
        self.batches.append([r for _, r in items])
        out = []
        for _, r in items:
            v = self.table.get(r, 0.0)
            out.append(Verdict(votes=[], value=v, label="yes" if v > 0.5 else "no", critique=f"critique of {r}"))
        return out


INST = Instruction("i", "Write something.")
TABLE = {"r.0": 0.2, "r.1": 0.4, "r.2": 0.4, "r.2.1": 1.0}


def grow(table, backend=None, roots=("r",), **cfg):
    backend = backend or refiner()
    judge = TableJudge(table)
    trees = search_trees([Root(Instruction(f"i{k}", "p"), r, "bad") for k, r in enumerate(roots)], backend, judge,
                         SearchConfig(**cfg))
    return trees, backend, judge


def responses(tree):
    return [n["response"] for n in tree.nodes]


def test_bfs_finishes_the_level_then_picks_the_best():
    (tree,), backend, judge = grow(TABLE, strategy="bfs")
    assert [len(chats) for chats, _ in backend.calls] == [1, 2]  # root; then the best two, r.1 before r.2 (tie: order)
    assert responses(tree) == ["r", "r.0", "r.1", "r.2", "r.1.0", "r.1.1", "r.1.2", "r.2.0", "r.2.1", "r.2.2"]
    assert tree.success and tree.calls == {"refine": 9, "judge": 9}
    best = [n for n in tree.nodes if n["id"] == tree.best][0]
    assert best["response"] == "r.2.1" and [n["response"] for n in path_to(tree, tree.best)] == ["r", "r.2", "r.2.1"]
    assert backend.calls[0][1].n == 3


def test_bfs_gate_is_strict_and_failure_keeps_best():
    (tree,), _, _ = grow({"r.0": 0.5, "r.1.2": 0.5}, strategy="bfs", max_depth=2)
    assert not tree.success  # 0.5 is not > 0.5
    assert [n["response"] for n in tree.nodes if n["id"] == tree.best] == ["r.0"]  # first of the best
    assert tree.calls["refine"] == 9


def test_dfs_recurses_best_first_in_order():
    (tree,), backend, _ = grow(TABLE, strategy="dfs", max_refinements=100)
    expanded = [re.search(r"\[Response\]\n(.*?)\n", chats[0][0]["content"]).group(1) for chats, _ in backend.calls]
    assert expanded == ["r", "r.1", "r.1.0", "r.1.1", "r.2"]
    assert tree.success and [n["response"] for n in tree.nodes if n["id"] == tree.best] == ["r.2.1"]
    assert tree.calls["refine"] == 15


def test_dfs_depth_limit():
    (tree,), backend, _ = grow({}, strategy="dfs", max_depth=2, max_refinements=100)
    assert max(n["depth"] for n in tree.nodes) == 2
    assert tree.calls["refine"] == 3 + 2 * 3 and not tree.success


def test_unparsed_refinement_is_failed_never_judged_or_expanded():
    backend = refiner(broken={"r.1"})
    (tree,), _, judge = grow({"r.0": 0.1}, backend=backend, strategy="bfs", max_depth=2)
    failed = [n for n in tree.nodes if n["failed"]]
    assert [n["response"] for n in failed] == ["r.1"] and failed[0]["value"] == 0.0
    assert "r.1" not in judge.batches[0]
    assert {n["parent"] for n in tree.nodes if n["depth"] == 2} == {"0.0", "0.2"}


def test_refinement_cap():
    (tree,), backend, _ = grow({}, strategy="bfs", max_refinements=4)
    assert tree.calls["refine"] == 4 and [c[1].n for c in backend.calls] == [3, 1]


def test_single_chain_is_branch_one():
    (tree,), _, _ = grow({}, strategy="bfs", branch=1, select=1, max_depth=3)
    assert responses(tree) == ["r", "r.0", "r.0.0", "r.0.0.0"]


def test_trees_advance_together_in_one_batch_per_step():
    trees, backend, judge = grow({"a.0": 0.9}, roots=("a", "b", "c"), strategy="bfs", max_depth=2)
    assert [len(chats) for chats, _ in backend.calls] == [3, 4]  # a succeeded at level 1
    assert len(judge.batches) == 2 and len(judge.batches[0]) == 9
    assert [t.success for t in trees] == [True, False, False]
    assert [t.instruction_id for t in trees] == ["i0", "i1", "i2"]


def test_invalid_verdicts_and_real_llm_judge():
    """With the LLM judge: value = yes/(yes+no) over valid votes, invalid ignored."""
    def respond(chat, i):
        text = chat[0]["content"]
        if "Now rewrite" in chat[-1]["content"]:
            return f"<refined>better {i}</refined>"
        return ["Verdict: Yes", "???", "Verdict: No"][i] if "better 1" in text else "Verdict: No"
    backend = ScriptedBackend(respond=respond)
    judge = LLMJudge(backend, n=3, resample=0)
    (tree,) = search_trees([Root(INST, "bad", "missing")], backend, judge, SearchConfig(max_depth=1))
    values = {n["response"]: n["value"] for n in tree.nodes[1:]}
    assert values == {"better 0": 0.0, "better 1": 0.5, "better 2": 0.0}
    assert not tree.success and [n["response"] for n in tree.nodes if n["id"] == tree.best] == ["better 1"]


def test_deterministic_on_the_tiny_model():
    backend = make_backend("hf", "tiny-random")
    judge = make_judge("llm", backend, n=2, max_new_tokens=6, resample=0)
    cfg = SearchConfig(max_depth=2, max_new_tokens=12, temperature=1.0, seed=3)
    roots = [Root(INST, "first answer", "too short"), Root(Instruction("j", "Other."), "second", "wrong")]
    a = search_trees(roots, backend, judge, cfg)
    judge.cache.clear()
    b = search_trees(roots, backend, judge, cfg)
    assert a == b and all(t.calls["refine"] >= 3 for t in a)


def test_config_validation():
    with pytest.raises(ValueError, match="search.strategy='mcts'"):
        SearchConfig(strategy="mcts")
    with pytest.raises(ValueError, match="search.gate=1"):
        SearchConfig(gate=1)


def test_prefill_starts_the_refinement_with_the_marker():
    """With search.prefill the refiner continues an assistant turn that opens with the start marker."""
    seen = []

    def respond(chat, i):
        seen.append(chat[-1])
        if chat[-1]["role"] == "assistant":
            return f"r.{i} without markers"  # the marker was prefilled, so this parses
        return "Verdict: No"
    backend = ScriptedBackend(respond=respond)
    (tree,) = search_trees([Root(INST, "r", "bad")], backend, TableJudge({}), SearchConfig(max_depth=1, prefill=True))
    assert seen[0]["content"].startswith("<refined>")
    assert [n["response"] for n in tree.nodes[1:]] == ["r.0 without markers", "r.1 without markers", "r.2 without markers"]
    assert not any(n["failed"] for n in tree.nodes)


def test_hf_backend_continues_a_prefilled_turn():
    backend = make_backend("hf", "tiny-random")
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<refined>\n"}]
    text = backend.render(chat)
    assert text.endswith("<refined>\n") and not text.endswith("<|im_start|>assistant\n")
