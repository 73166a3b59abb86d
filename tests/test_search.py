"""BFS and DFS exactly as the paper defines them, pinned with a scripted refiner and a table judge."""

import re

import pytest

from spar.backends import make_backend
from spar.backends.scripted import ScriptedBackend
from spar.config import SearchConfig
from spar.judge import LLMJudge, Verdict, make_judge
from spar.records import Instruction
from spar.search.engine import Root, search_trees
from spar.search.tree import path_to


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
    with pytest.raises(ValueError, match="search.gate=1.5"):  # issue 10 item 12: gate in [0, 1]
        SearchConfig(gate=1.5)


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
    assert [n["response"] for n in tree.nodes[1:]] == [f"r.{i} without markers" for i in range(3)]
    assert not any(n["failed"] for n in tree.nodes)


def test_hf_backend_continues_a_prefilled_turn():
    backend = make_backend("hf", "tiny-random")
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<refined>\n"}]
    text = backend.render(chat)
    assert text.endswith("<refined>\n") and not text.endswith("<|im_start|>assistant\n")


class CutBackend(ScriptedBackend):
    """A scripted refiner whose replies for the responses in `cut` stop at max_new_tokens (finish_reason length)."""

    def __init__(self, respond, cut):
        super().__init__(respond=respond)
        self.cut = cut

    def generate(self, chats, params):
        out = super().generate(chats, params)
        for chat, row in zip(chats, out):
            parent = re.search(r"\[Response\]\n(.*?)\n", chat[0]["content"]).group(1)
            for i, c in enumerate(row):
                if f"{parent}.{i}" in self.cut:
                    c.finish_reason = "length"
        return out


def cut_refiner(cut):
    """Like refiner(), but a child listed in `cut` is written without its end marker and cut by length."""
    def respond(chat, i):
        parent = re.search(r"\[Response\]\n(.*?)\n", chat[0]["content"]).group(1)
        child = f"{parent}.{i}"
        return f"change it\n<refined>{child}" if child in cut else f"change it\n<refined>{child}</refined>"
    return CutBackend(respond, cut)


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_truncated_refinement_is_never_judged_right_but_may_be_refined(strategy):
    """Old code: a refinement cut by max_new_tokens with a high value ended the search as the answer,
    so a half-written response became a chosen one; nodes carried no mark of the cut."""
    table = {"r.0": 1.0, "r.1": 0.4, "r.0.1": 0.9}
    (tree,), _, _ = grow(table, backend=cut_refiner({"r.0"}), strategy=strategy, max_refinements=100)
    nodes = {n["response"]: n for n in tree.nodes}
    assert nodes["r.0"]["truncated"] and nodes["r.0"]["value"] == 1.0  # judged like any node
    assert not any(n["truncated"] for n in tree.nodes if n["response"] != "r.0")
    assert tree.success and nodes["r.0.1"]["id"] == tree.best  # the cut node was refined into a whole answer
    # allowed explicitly, the cut node is an answer like any other
    (tree,), _, _ = grow(table, backend=cut_refiner({"r.0"}), strategy=strategy, accept_truncated=True)
    assert tree.success and [n["response"] for n in tree.nodes if n["id"] == tree.best] == ["r.0"]


def test_bfs_answers_with_the_best_whole_refinement_of_the_level():
    """A cut node above a whole one judged right: the whole one is the answer, at the same level."""
    (tree,), _, _ = grow({"r.0": 1.0, "r.2": 0.75}, backend=cut_refiner({"r.0"}), strategy="bfs")
    assert tree.success and tree.calls["refine"] == 3
    assert [n["response"] for n in tree.nodes if n["id"] == tree.best] == ["r.2"]


def test_only_all_cut_refinements_fail_the_search():
    (tree,), _, _ = grow({"r.0": 1.0}, backend=cut_refiner({"r.0"}), strategy="bfs", max_depth=1)
    assert not tree.success and tree.nodes[1]["truncated"]


def test_truncation_is_the_cut_before_the_end_marker():
    """A length cut after the end marker lost only chatter: the refinement is whole. With prefill, the
    completion continues the prefilled marker, so a length cut is a cut refinement."""
    def respond(chat, i):
        if chat[-1]["role"] == "assistant":  # prefilled
            return ["whole answer", "cut answ"][i]
        return ["<refined>whole</refined> and then some chatter", "<refined>cut answ", "no markers at all"][i]

    class Length(ScriptedBackend):
        def generate(self, chats, params):
            out = super().generate(chats, params)
            for row in out:
                for i, c in enumerate(row):
                    c.finish_reason = "length" if i > 0 or "chatter" in c.text else "stop"
            return out

    (tree,) = search_trees([Root(INST, "r", "bad")], Length(respond=respond), TableJudge({}), SearchConfig(max_depth=1))
    assert [(n["response"], n["truncated"], n["failed"]) for n in tree.nodes[1:]] == [
        ("whole", False, False), ("cut answ", True, False), ("no markers at all", True, True)]
    (tree,) = search_trees([Root(INST, "r", "bad")], Length(respond=respond), TableJudge({}),
                           SearchConfig(max_depth=1, branch=2, prefill=True))
    assert [(n["response"], n["truncated"]) for n in tree.nodes[1:]] == [("whole answer", False), ("cut answ", True)]


def test_truncated_flag_round_trips_and_old_trees_still_load(tmp_path):
    from dataclasses import replace

    from spar.records import Tree, read_jsonl, write_jsonl
    from spar.selfplay.pairs import refinement_pairs

    (tree,), _, _ = grow({}, backend=cut_refiner({"r.1"}), strategy="bfs", max_depth=1)
    (read,) = read_jsonl(write_jsonl(tmp_path / "trees.jsonl", [tree]), Tree)
    flags = {n["id"]: n["truncated"] for n in read.nodes}
    assert flags["0.1"] and not flags["0.0"]
    found = replace(read, success=True, best="0.1")  # as if the cut refinement had been judged right
    instructions = {"i0": Instruction("i0", "p")}
    assert refinement_pairs([found], instructions) == []  # a cut answer is never chosen
    for n in found.nodes:
        del n["truncated"]  # a tree written before the field existed: its answers count as whole
    assert [p.chosen for p in refinement_pairs([found], instructions)] == ["r.1"]


def test_loop_counts_truncated_responses_and_refinements(tmp_path, capsys, monkeypatch):
    """The manifest's sample and search records and the printed summary count completions cut by length.
    Old code: no count anywhere, and a cut refinement judged "yes" made the tree succeed."""
    import json
    from pathlib import Path

    from spar.backends.base import Completion
    from spar.cli import main

    repo = Path(__file__).resolve().parents[1]
    def generate(self, chats, params):
        """Refine requests: an answer cut mid-way. Judge requests: "No" for samples, "Yes" for the refinement."""
        self.calls.append((chats, params))
        if chats and chats[0][-1]["content"].startswith("Now rewrite"):
            return [[Completion('<refined>"A quoted', finish_reason="length") for _ in range(params.n)] for _ in chats]
        verdicts = ["Verdict: Yes" if '\n"A quoted\n' in c[0]["content"] else "Verdict: No" for c in chats]
        return [[Completion(v) for _ in range(params.n)] for v in verdicts]

    monkeypatch.setattr(ScriptedBackend, "generate", generate)
    assert main(["run", "--config", str(repo / "tests/assets/loop.yaml"), f"out_dir={tmp_path}",
                 f"data.source={repo / 'tests/assets/quote_instructions.jsonl'}", "iterations=1", "judge.kind=llm",
                 "sample.max_new_tokens=3", "train.actor=false", "train.refiner=false"]) == 0
    root = tmp_path / "loop"
    manifest = json.loads((root / "manifest.json").read_text())["iterations"]["0"]
    responses = [json.loads(x) for x in (root / "iter_0" / "responses.jsonl").read_text().splitlines()]
    cut = sum(r["truncated"] for r in responses)
    assert manifest["sample"]["truncated"] == cut > 0  # the tiny model never ends within 3 tokens
    trees = [json.loads(x) for x in (root / "iter_0" / "trees.jsonl").read_text().splitlines()]
    assert trees and manifest["search"]["truncated"] == manifest["search"]["refinements"] > 0
    assert all(n["value"] == 1.0 for t in trees for n in t["nodes"][1:])
    assert not any(t["success"] for t in trees)  # every refinement was judged "yes", but each was cut
    out = capsys.readouterr().out
    table = out.split("SPaR run")[1].splitlines()
    header, row = table[1].split(), table[3].split()
    assert row[header.index("cut(smp)")] == str(cut)
    assert row[header.index("cut(ref)")] == str(manifest["search"]["truncated"])
    summary = json.loads(out.strip().splitlines()[-1])["iterations"][0]
    assert summary["truncated_responses"] == cut and summary["truncated_refinements"] == manifest["search"]["truncated"]


class ContinuousRefiner(ScriptedBackend):
    """A scripted refiner that batches continuously, as vLLM does (`concurrent`): callers in several threads at
    once. Refining the root of tree "slow" waits until a refinement of tree "fast" has been judged, which can
    only happen when the trees send their calls apart; after `patience` seconds it gives up and records it."""

    concurrent = True

    def __init__(self, judged, patience=10.0):
        super().__init__(respond=refiner().respond)
        self.judged, self.patience, self.waited_in_vain = judged, patience, False

    def generate(self, chats, params):
        if any("[Response]\nslow\n" in c[0]["content"] for c in chats):
            self.waited_in_vain = not self.judged.wait(self.patience)
        return super().generate(chats, params)


def test_on_a_continuous_backend_a_tree_does_not_wait_for_another_trees_refinements():
    """Old code: all trees sent one call per level, so tree "fast" was judged only after tree "slow"'s
    slowest refinement came back (here: never, until the refiner gave up)."""
    import threading

    judged = threading.Event()

    class Judge(TableJudge):
        def judge(self, items):
            if any(r.startswith("fast.") for _, r in items):
                judged.set()
            return super().judge(items)

    table = {"fast.1": 1.0, "slow.2": 1.0}
    backend = ContinuousRefiner(judged)
    roots = [Root(Instruction("s", "p"), "slow", "bad"), Root(Instruction("f", "p"), "fast", "bad")]
    finished = []
    trees = search_trees(roots, backend, Judge(table), SearchConfig(max_depth=2), on_done=finished.append)
    assert not backend.waited_in_vain
    assert [t.instruction_id for t in trees] == ["s", "f"]  # input order
    assert sorted(t.instruction_id for t in finished) == ["f", "s"]
    assert all(len(chats) == 1 for chats, _ in backend.calls)  # each tree sent its own calls


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_threaded_trees_equal_lockstep_trees(strategy):
    """Each tree numbers its steps from 0 in its own thread, so it asks for the seeds it gets in lockstep."""
    import threading

    seeds = {}

    def respond(chat, i):
        parent = re.search(r"\[Response\]\n(.*?)\n", chat[0]["content"]).group(1)
        return f"change it\n<refined>{parent}.{i}</refined>"

    class Seeded(ScriptedBackend):
        lock = threading.Lock()

        def generate(self, chats, params):
            with self.lock:
                for c in chats:
                    seeds[(type(self).__name__, re.search(r"\[Response\]\n(.*?)\n", c[0]["content"]).group(1))] = \
                        params.seed
                return super().generate(chats, params)

    class Threaded(Seeded):
        concurrent = True

    table = {"a.1.2": 1.0, "b.0": 0.7, "c.2.2": 0.4, "c.2.2.0": 0.9, "d.1": 0.3}
    roots = [Root(Instruction(x, "p"), x, "bad") for x in "abcd"]
    cfg = SearchConfig(strategy=strategy, max_depth=3, seed=5)
    lockstep = search_trees(roots, Seeded(respond=respond), TableJudge(table), cfg)
    threaded = search_trees(roots, Threaded(respond=respond), TableJudge(table), cfg)
    assert threaded == lockstep
    assert {k: v for (who, k), v in seeds.items() if who == "Threaded"} == \
           {k: v for (who, k), v in seeds.items() if who == "Seeded"}


def test_an_error_in_one_threaded_tree_reaches_the_caller_at_once():
    """The error (or Ctrl-C) comes out while another tree's call is still in flight, not after it returns."""
    import threading

    release = threading.Event()

    class Failing(ScriptedBackend):
        concurrent = True
        in_flight = False

        def generate(self, chats, params):
            if any("[Response]\nbad\n" in c[0]["content"] for c in chats):
                while not self.in_flight:
                    release.wait(0.01)
                raise RuntimeError("the engine died")
            self.in_flight = True
            release.wait(30)  # a long call on the engine, until the test ends it
            self.in_flight = False
            return super().generate(chats, params)

    backend = Failing(respond=refiner().respond)
    roots = [Root(Instruction(x, "p"), x, "critique") for x in ("good", "bad")]
    with pytest.raises(RuntimeError, match="the engine died"):
        search_trees(roots, backend, TableJudge({}), SearchConfig())
    assert backend.in_flight and not release.is_set()
    release.set()
