"""The loop's data steps without a model: negatives, pair builders, the RFT builder, resumable chunks."""

import json

import pytest

from spar.config import RFTDataConfig
from spar.parsing import REFINED_END, REFINED_START
from spar.prompts import judge_chat, refine_chat
from spar.records import Instruction, Judgment, Response, Tree, read_jsonl
from spar.selfplay.collect import select_negatives
from spar.selfplay.pairs import edit_distance, refinement_pairs, sampled_pairs
from spar.selfplay.rft_data import build_rft
from spar.selfplay.rundir import RunDir, run_chunked

QUOTE = [{"id": "startend:quotation", "kwargs": {}}]


def inst(i, constraints=QUOTE):
    return Instruction(f"i{i}", f"Say something about {i}. Wrap it in double quotes.", constraints, "test")


def vote(v, c=None):
    return {"verdict": v, "critique": c or f"critique {v}"}


def judged(iid, labels):
    """Responses and judgments of one instruction: labels like "yny" (yes / no / abstain=a)."""
    rs, js = [], []
    for k, lab in enumerate(labels):
        r = Response(iid, k, f"answer {k} of {iid}" if lab != "y" else f'"answer {k} of {iid}"')
        rs.append(r)
        label = {"y": "yes", "n": "no", "a": "abstain"}[lab]
        js.append(Judgment(iid, r.id, [vote(label if lab != "a" else "invalid")], {"y": 1.0, "n": 0.0}.get(lab),
                           label, None, f"why {r.id}"))
    return rs, js


def node(id, parent, depth, response, value, votes=(), reasoning="", critique="", failed=False, label=None,
         **extra):
    """A tree node dict; its label follows its value (yes above 0.5, no below) unless given."""
    if label is None:
        label = "invalid" if failed else "" if value is None else "yes" if value > 0.5 else "no" if value < 0.5 else ""
    return {"id": id, "parent": parent, "depth": depth, "response": response, "critique": critique,
            "reasoning": reasoning, "votes": list(votes), "value": value, "label": label, "failed": failed, **extra}


# ---- step 1: negatives -------------------------------------------------------------------


def test_negatives_one_per_instruction_with_a_wrong_response_seeded():
    responses, judgments = [], []
    for i, labels in enumerate(["yyy", "nyn", "aaa", "nnn"] + ["nnnnn"] * 20):
        rs, js = judged(f"i{i}", labels)
        responses += rs
        judgments += js
    negs = select_negatives(responses, judgments, seed=0)
    ids = [n.instruction_id for n in negs]
    assert "i0" not in ids and "i2" not in ids  # all right / only abstentions: nothing to refine
    assert len(ids) == len(set(ids)) == 22
    by_id = {j.response_id: j for j in judgments}
    assert all(by_id[n.response_id].label == "no" and n.critique == f"why {n.response_id}" for n in negs)
    assert negs == select_negatives(responses, judgments, seed=0)  # seeded
    assert [n.response_id for n in negs] != [n.response_id for n in select_negatives(responses, judgments, seed=1)]


# ---- step 3a: pairs ---------------------------------------------------------------------


def test_refinement_pair_is_best_node_against_the_root_negative():
    tree = Tree("i1", "0", [node("0", None, 0, "plain answer here", 0.0), node("0.0", "0", 1, "still plain", 0.2),
                            node("0.0.1", "0.0", 2, '"plain answer here"', 0.8)],
                success=True, best="0.0.1")
    failed = Tree("i2", "0", [node("0", None, 0, "x", 0.0), node("0.0", "0", 1, "y", 0.4)], success=False, best="0.0")
    pairs = refinement_pairs([tree, failed], {"i1": inst(1), "i2": inst(2)})
    assert len(pairs) == 1  # a failed search yields no pair
    p = pairs[0]
    assert (p.chosen, p.rejected, p.source) == ('"plain answer here"', "plain answer here", "refinement")
    assert p.prompt == [{"role": "user", "content": inst(1).prompt}]
    assert p.edit_distance == 2  # the first and last words gained a quote


def test_sampled_pair_is_a_right_sample_against_the_negative():
    rs1, js1 = judged("i1", "nyy")
    rs2, js2 = judged("i2", "nn")
    negs = select_negatives(rs1 + rs2, js1 + js2, seed=0)
    pairs = sampled_pairs(rs1 + rs2, js1 + js2, negs, {"i1": inst(1), "i2": inst(2)}, seed=0)
    assert len(pairs) == 1 and pairs[0].instruction_id == "i1"  # i2 has no right sample
    assert pairs[0].chosen in ('"answer 1 of i1"', '"answer 2 of i1"') and pairs[0].rejected == "answer 0 of i1"
    assert pairs[0].source == "sampled" and pairs[0].edit_distance == edit_distance(pairs[0].chosen, pairs[0].rejected)


def test_edit_distance_counts_tokens():
    assert edit_distance("a b c", "a b c") == 0
    assert edit_distance("a b c", "a x c") == 1
    assert edit_distance("a, b", "a b") == 1
    assert edit_distance("", "one two") == 2
    assert edit_distance("a b c d", "b c d e") == 2


# ---- step 3b: RFT data ------------------------------------------------------------------


def tree_with_values():
    v = lambda *xs: [vote(x, f"{x}: node says {x}") for x in xs]  # noqa: E731
    return Tree("i1", "0", [
        node("0", None, 0, "no quotes", 0.0, v("no", "no"), critique="Add quotes."),
        node("0.0", "0", 1, "also no quotes", 1 / 3, v("no", "yes", "no"), reasoning="try", critique="Still none."),
        node("0.1", "0", 1, "nope", 0.0, v("no", "no")),  # unanimous: not needed
        node("0.2", "0", 1, "", None, failed=True),
        node("0.0.0", "0.0", 2, '"quoted"', 2 / 3, v("yes", "no", "yes"), reasoning="Quotes were missing."),
        node("0.0.1", "0.0", 2, '"quoted too"', 0.5, v("yes", "no")),  # a tie: not settled
        node("0.0.2", "0.0", 2, '"also quoted"', 1.0, v("yes", "yes")),  # unanimous
    ], success=True, best="0.0.0")


def test_rft_refine_example_is_the_successful_refinement_chat():
    instructions = {"i1": inst(1)}
    examples = build_rft([tree_with_values()], [], [], instructions, RFTDataConfig(), "llm", seed=0)
    refine = [e for e in examples if e.kind == "refine"]
    assert len(refine) == 1  # the step that succeeded, not the wrong step before it
    want = refine_chat(inst(1).prompt, "also no quotes", "Still none.")
    assert refine[0].messages[:-1] == want
    assert refine[0].messages[-1] == {"role": "assistant",
                                      "content": f"Quotes were missing.\n{REFINED_START}\n\"quoted\"\n{REFINED_END}"}


def test_rft_refine_example_with_prefill_is_the_turn_the_refiner_continued():
    examples = build_rft([tree_with_values()], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0, prefill=True)
    refine = [e for e in examples if e.kind == "refine"][0]
    prefilled = refine_chat(inst(1).prompt, "also no quotes", "Still none.", prefill=True)
    assert refine.messages[:-1] == prefilled[:-1]
    assert refine.messages[-1]["content"] == f"{REFINED_START}\n\"quoted\"\n{REFINED_END}"


def test_rft_node_critiques_only_where_votes_were_split():
    examples = build_rft([tree_with_values()], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0)
    judge = [e for e in examples if e.kind == "judge"]
    # 0.0 (V=1/3, negative) and 0.0.0 (V=2/3, positive); not the root, V in {0, 0.5, 1} or failed nodes
    assert sorted(e.messages[0]["content"] for e in judge) == sorted(
        judge_chat(inst(1).prompt, r)[0]["content"] for r in ("also no quotes", '"quoted"'))
    assert {e.messages[-1]["content"] for e in judge} == {"no: node says no", "yes: node says yes"}
    assert {e.source for e in judge} == {"tree-node"}


def test_rft_with_a_verifier_keeps_only_critiques_that_agree_with_it():
    """i1: 0.0 'also no quotes' judged no (agrees: no quotes). i2: a no-majority on a quoted answer (one negative
    node per tree, so it gets a tree of its own)."""
    trees = [tree_with_values(), tree_with_values()]
    trees[0].nodes[4]["value"] = 1.0  # i1: only the negative node 0.0 has split votes
    trees[1].instruction_id = "i2"
    trees[1].nodes[1]["value"] = 0.0  # i2: only the flipped node 0.0.0 has split votes
    trees[1].nodes[4]["votes"] = [vote("no", "wrong"), vote("no", "wrong"), vote("yes", "ok")]
    trees[1].nodes[4].update(value=1 / 3, label="no")
    instructions = {"i1": inst(1), "i2": inst(2)}
    llm = build_rft(trees, [], [], instructions, RFTDataConfig(), "llm", seed=0)
    grounded = build_rft(trees, [], [], instructions, RFTDataConfig(), "verifier", seed=0)
    critiques = lambda ex: sorted(e.messages[-1]["content"] for e in ex if e.kind == "judge")  # noqa: E731
    assert critiques(llm) == ["no: node says no", "wrong"]  # the paper trusts the majority
    assert critiques(grounded) == ["no: node says no"]  # the verifier says '"quoted"' is right


def test_rft_hybrid_judge_examples_carry_the_note_the_judge_saw():
    """Old code wrote "already checked by a program and met" for every hard requirement, even where code found the
    response failing it; the example must be the exact request the hybrid judge sent for that response."""
    from spar.judge import judge_request

    examples = build_rft([tree_with_values()], [], [], {"i1": inst(1)}, RFTDataConfig(), "hybrid", seed=0)
    judge = [e for e in examples if e.kind == "judge"]
    assert judge
    for e in judge:
        response = next(r for r in ("also no quotes", '"quoted"') if r in e.messages[0]["content"])
        assert e.messages[:-1] == judge_request(inst(1), response, True)
        assert e.messages[:-1] != judge_request(inst(1), response, False)  # the note is there
    llm = [e for e in build_rft([tree_with_values()], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0)
           if e.kind == "judge"]
    assert len(llm) == 2 and all(
        e.messages[:-1] in (judge_request(inst(1), r, False) for r in ("also no quotes", '"quoted"')) for e in llm)


def test_rft_judge_stage_critiques_of_split_votes_only():
    rs = [Response("i1", k, t) for k, t in enumerate(['"fine"', "bare", "bare too"])]
    js = [
        Judgment("i1", rs[0].id, [vote("yes", "good"), vote("no", "bad"), vote("yes", "good2")], 2 / 3, "yes",
                 {"passed": True, "failed": [], "feedback": ""}),
        Judgment("i1", rs[1].id, [vote("no"), vote("no"), vote("invalid")], 0.0, "no",
                 {"passed": False, "failed": ["startend:quotation"], "feedback": ""}),  # unanimous among valid votes
        Judgment("i1", rs[2].id, [vote("yes", "looks fine"), vote("yes", "ok"), vote("no", "no quotes")], 2 / 3, "yes",
                 {"passed": False, "failed": ["startend:quotation"], "feedback": ""}),  # the verifier disagrees
    ]
    llm = build_rft([], js, rs, {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0)
    assert [e.messages[-1]["content"] for e in llm] == ["good", "looks fine"]
    assert all(e.source == "judge-stage" for e in llm)
    grounded = build_rft([], js, rs, {"i1": inst(1)}, RFTDataConfig(), "verifier", seed=0)
    assert [e.messages[-1]["content"] for e in grounded] == ["good"]


def test_rft_caps_keep_a_seeded_sample():
    trees = []
    for i in range(6):
        t = tree_with_values()
        t.instruction_id = f"i{i}"
        trees.append(t)
    instructions = {f"i{i}": inst(i) for i in range(6)}
    cfg = RFTDataConfig(max_refine=4, max_judge=3)
    a = build_rft(trees, [], [], instructions, cfg, "llm", seed=0)
    assert sum(e.kind == "refine" for e in a) == 4 and sum(e.kind == "judge" for e in a) == 3
    assert a == build_rft(trees, [], [], instructions, cfg, "llm", seed=0)
    assert a != build_rft(trees, [], [], instructions, cfg, "llm", seed=5)


def chain_tree(iid="i1", mid_value=0.75, mid_label=None, best_extra=None, gate_success=True):
    """root -> 0.0 (mid_value) -> 0.0.0 (V=1, the best): the chain a search that kept refining leaves behind."""
    return Tree(iid, "0", [
        node("0", None, 0, "no quotes at all", 0.0, [vote("no")], critique="Quotes are missing."),
        node("0.0", "0", 1, '"half quoted', mid_value, [vote("yes", "almost"), vote("no", "one quote only")],
             reasoning="Add quotes.", critique="The closing quote is missing.", label=mid_label),
        node("0.0.0", "0.0", 2, '"fully quoted"', 1.0, [vote("yes")], reasoning="Close the quote.",
             **(best_extra or {})),
    ], success=gate_success, best="0.0.0")


def refine_targets(examples):
    return [e.messages[-1]["content"] for e in examples if e.kind == "refine"]


def test_rft_refine_steps_last_is_the_default_and_path_adds_steps_judged_right():
    """Old code had no choice of steps. `path` trains every step on the root-to-best chain whose refinement was
    itself judged right; `last` (the reference's choice, the default) only the step that produced the answer."""
    assert RFTDataConfig().refine_steps == "last"
    tree = chain_tree(mid_value=0.75)  # judged right (0.75 > 0.5) yet the search went on (e.g. gate 0.8)
    last = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0)
    path = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(refine_steps="path"), "llm", seed=0)
    assert refine_targets(last) == [f'Close the quote.\n{REFINED_START}\n"fully quoted"\n{REFINED_END}']
    assert refine_targets(path) == [f'Add quotes.\n{REFINED_START}\n"half quoted\n{REFINED_END}',
                                    f'Close the quote.\n{REFINED_START}\n"fully quoted"\n{REFINED_END}']
    first = next(e for e in path if e.kind == "refine")
    assert first.messages[:-1] == refine_chat(inst(1).prompt, "no quotes at all", "Quotes are missing.")
    assert all(e.label == "" and e.source == "tree" for e in path if e.kind == "refine")


def test_rft_path_skips_steps_whose_refinement_was_judged_wrong():
    tree = chain_tree(mid_value=0.25)  # the intermediate refinement was judged wrong
    path = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(refine_steps="path"), "llm", seed=0)
    assert refine_targets(path) == [f'Close the quote.\n{REFINED_START}\n"fully quoted"\n{REFINED_END}']


def test_rft_never_trains_on_a_final_refinement_judged_wrong():
    """Old code trained on the best node of every successful tree; with a low gate (search.gate=0.3) a tree
    succeeds on a refinement the majority judged wrong, which must not become a target."""
    tree = Tree("i1", "0", [node("0", None, 0, "no quotes", 0.0, critique="Add quotes."),
                            node("0.0", "0", 1, "still none", 0.4, [vote("no"), vote("no"), vote("yes")])],
                success=True, best="0.0")
    for steps in ("last", "path"):
        examples = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(refine_steps=steps), "llm", seed=0)
        assert refine_targets(examples) == []


def test_rft_prefilled_refinement_is_the_prefill_plus_what_the_refiner_wrote_after_it():
    """The engine sends refine_chat(prefill=True), whose last turn is the started assistant turn, and parses
    prefill + completion. The example's last turn must start with that exact prefill, and what follows must be
    a completion the engine parses back to the same refinement; the chat before it is the engine's chat."""
    from spar.parsing import parse_refinement

    for steps in ("last", "path"):
        examples = build_rft([chain_tree()], [], [], {"i1": inst(1)}, RFTDataConfig(refine_steps=steps), "llm",
                             seed=0, prefill=True)
        refine = [e for e in examples if e.kind == "refine"]
        assert len(refine) == (1 if steps == "last" else 2)
        parents = {'"fully quoted"': ('"half quoted', "The closing quote is missing."),
                   '"half quoted': ("no quotes at all", "Quotes are missing.")}
        for e in refine:
            sent = refine_chat(inst(1).prompt, *next(p for r, p in parents.items() if r in e.messages[-1]["content"]),
                               prefill=True)
            assert e.messages[:-1] == sent[:-1]  # the rewrite request, not the reflect-then-mark one
            prefix, turn = sent[-1]["content"], e.messages[-1]
            assert turn["role"] == "assistant" and turn["content"].startswith(prefix)
            completion = turn["content"][len(prefix):]
            parsed = parse_refinement(REFINED_START + "\n" + completion)  # exactly as the engine parses it
            assert parsed.response in parents and parsed.reasoning == ""
            assert completion == f"{parsed.response}\n{REFINED_END}"


def test_rft_one_positive_and_one_negative_node_per_tree_seeded():
    """Old code trained on every node with a split vote; the reference keeps one positive (0.5 < V < 1) and one
    negative (0 < V < 0.5) node per tree, picked at random."""
    def tree(i):
        nodes = [node("0", None, 0, "bare", 0.0, critique="Quote it.")]
        for k in range(4):
            nodes.append(node(f"0.{k}", "0", 1, f"bare {i} {k}", 1 / 3,
                              [vote("no", f"no {i} {k}"), vote("yes"), vote("no")]))
            nodes.append(node(f"0.{k + 4}", "0", 1, f'"quoted {i} {k}"', 2 / 3,
                              [vote("yes", f"yes {i} {k}"), vote("no"), vote("yes")]))
        return Tree(f"i{i}", "0", nodes, success=False, best="0.4")

    trees, instructions = [tree(i) for i in range(8)], {f"i{i}": inst(i) for i in range(8)}
    picks = {}
    for seed in (0, 1):
        examples = build_rft(trees, [], [], instructions, RFTDataConfig(), "llm", seed=seed)
        assert all(e.kind == "judge" and e.source == "tree-node" for e in examples)
        assert len(examples) == 16
        for i in range(8):
            mine = [e for e in examples if f"about {i}." in e.messages[0]["content"]]
            assert sorted(e.label for e in mine) == ["no", "yes"]
            assert all(e.messages[-1]["content"].startswith(e.label) for e in mine)
        picks[seed] = [e.messages[-1]["content"] for e in examples]
        assert picks[seed] == [e.messages[-1]["content"] for e in
                               build_rft(trees, [], [], instructions, RFTDataConfig(), "llm", seed=seed)]
    assert picks[0] != picks[1]


def test_rft_no_critique_from_a_judgment_that_abstained():
    """With judge.min_valid, split votes can still end in an abstention (too few valid votes): old code trained
    on their majority critique as if the judge had decided."""
    rs = [Response("i1", 0, "bare")]
    votes = [vote("no", "no quotes"), vote("no", "none"), vote("yes", "fine")] + [vote("invalid")] * 4
    abstained = Judgment("i1", rs[0].id, votes, 1 / 3, "abstain")
    assert build_rft([], [abstained], rs, {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0) == []
    decided = Judgment("i1", rs[0].id, votes, 1 / 3, "no")
    assert [e.messages[-1]["content"] for e in build_rft([], [decided], rs, {"i1": inst(1)}, RFTDataConfig(), "llm",
                                                         seed=0)] == ["no quotes"]
    tree = tree_with_values()
    tree.nodes[1]["label"] = "abstain"  # V = 1/3 from too few valid votes
    judge = [e for e in build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0) if e.kind == "judge"]
    assert [e.label for e in judge] == ["yes"]


def test_rft_caps_per_kind_and_label_default_to_the_reference():
    cfg = RFTDataConfig()
    assert (cfg.max_refine, cfg.max_tree_yes, cfg.max_tree_no, cfg.max_stage_yes, cfg.max_stage_no,
            cfg.max_judge) == (4000, 1500, 1000, 2500, 500, None)
    rs, js = [], []
    for i in range(6):
        for k, (verdicts, label) in enumerate([("yyn", "yes"), ("nny", "no")]):
            r = Response(f"i{i}", k, f"answer {k} of i{i}")
            rs.append(r)
            js.append(Judgment(f"i{i}", r.id, [vote({"y": "yes", "n": "no"}[v], f"{v} on {r.id}") for v in verdicts],
                               2 / 3 if label == "yes" else 1 / 3, label))
    trees = []
    for i in range(6):
        t = tree_with_values()
        t.instruction_id = f"i{i}"
        trees.append(t)
    instructions = {f"i{i}": inst(i) for i in range(6)}
    small = RFTDataConfig(max_refine=5, max_tree_yes=4, max_tree_no=3, max_stage_yes=2, max_stage_no=1)
    examples = build_rft(trees, js, rs, instructions, small, "llm", seed=0)
    count = lambda src, lab: sum(e.source == src and e.label == lab for e in examples)  # noqa: E731
    assert sum(e.kind == "refine" for e in examples) == 5
    assert (count("tree-node", "yes"), count("tree-node", "no")) == (4, 3)
    assert (count("judge-stage", "yes"), count("judge-stage", "no")) == (2, 1)
    uncapped = build_rft(trees, js, rs, instructions, cfg, "llm", seed=0)
    assert len(uncapped) == 6 + 6 + 6 + 6 + 6
    total = build_rft(trees, js, rs, instructions, RFTDataConfig(max_judge=7), "llm", seed=0)
    assert sum(e.kind == "judge" for e in total) == 7 and sum(e.kind == "refine" for e in total) == 6


def test_rft_the_same_request_is_kept_once():
    """A refinement that equals a sampled response is judged with the same votes in the tree and the judge stage:
    old code trained on the same judge chat twice."""
    tree = tree_with_values()
    r = Response("i1", 0, "also no quotes")  # the same text as tree node 0.0, judged the same way
    j = Judgment("i1", r.id, [vote("no", "no: node says no"), vote("yes", "x"), vote("no", "y")], 1 / 3, "no")
    counts = {}
    examples = build_rft([tree, tree], [j], [r], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0, counts=counts)
    keys = [json.dumps(e.messages[:-1]) for e in examples]
    assert len(keys) == len(set(keys)) == 3  # one refine, one positive and one negative node critique
    assert counts["duplicates"] == 4  # the second tree's three, the judge-stage copy of node 0.0


def test_rft_truncated_refinement_is_not_a_target_unless_accepted():
    """A refinement cut by max_new_tokens (node key "truncated") was never a target-worthy answer."""
    tree = chain_tree(mid_value=0.75, best_extra={"truncated": True})
    counts = {}
    examples = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(refine_steps="path"), "llm", seed=0,
                         counts=counts)
    assert refine_targets(examples) == [f'Add quotes.\n{REFINED_START}\n"half quoted\n{REFINED_END}']
    assert counts["truncated"] == 1
    accepted = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(accept_truncated=True), "llm", seed=0)
    assert refine_targets(accepted) == [f'Close the quote.\n{REFINED_START}\n"fully quoted"\n{REFINED_END}']


def test_rft_critique_from_a_truncated_vote_is_not_a_target():
    cut = lambda v, c: {**vote(v, c), "truncated": True}  # noqa: E731
    tree = tree_with_values()
    tree.nodes[1]["votes"] = [cut("no", "cut no"), vote("yes"), vote("no", "whole no")]  # another whole "no"
    tree.nodes[4]["votes"] = [cut("yes", "cut yes"), vote("no"), cut("yes", "cut yes 2")]  # every "yes" cut
    rs = [Response("i1", 0, "bare")]
    js = [Judgment("i1", rs[0].id, [cut("no", "cut stage"), vote("no", "whole stage"), vote("yes")], 1 / 3, "no"),]
    counts = {}
    examples = build_rft([tree], js, rs, {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0, counts=counts)
    critiques = sorted(e.messages[-1]["content"] for e in examples if e.kind == "judge")
    assert critiques == ["whole no", "whole stage"]
    assert counts["truncated"] == 1  # the positive node had no whole critique
    # accepted, a cut critique is used where no whole one agrees; a whole one is still preferred
    accepted = build_rft([tree], js, rs, {"i1": inst(1)}, RFTDataConfig(accept_truncated=True), "llm", seed=0)
    assert sorted(e.messages[-1]["content"] for e in accepted if e.kind == "judge") == ["cut yes", "whole no",
                                                                                         "whole stage"]


def test_sampled_pair_never_chooses_a_truncated_response_unless_accepted():
    """Old code could pick a right response cut by max_new_tokens as chosen: DPO would reward stopping mid-answer."""
    rs, js = judged("i1", "nyy")
    rs[1].truncated = True
    negs = select_negatives(rs, js, seed=0)
    for seed in range(10):
        counts = {}
        pairs = sampled_pairs(rs, js, negs, {"i1": inst(1)}, seed=seed, counts=counts)
        assert [p.chosen for p in pairs] == ['"answer 2 of i1"'] and counts["truncated"] == 1
    rs[2].truncated = True
    assert sampled_pairs(rs, js, negs, {"i1": inst(1)}, seed=0) == []  # no whole right response: no pair
    accepted = sampled_pairs(rs, js, negs, {"i1": inst(1)}, seed=0, accept_truncated=True)
    assert len(accepted) == 1 and accepted[0].chosen in ('"answer 1 of i1"', '"answer 2 of i1"')


def test_refinement_pair_skips_a_truncated_best_unless_accepted():
    tree = chain_tree(best_extra={"truncated": True})
    counts = {}
    assert refinement_pairs([tree], {"i1": inst(1)}, counts=counts) == [] and counts["truncated"] == 1
    assert [p.chosen for p in refinement_pairs([tree], {"i1": inst(1)}, accept_truncated=True)] == ['"fully quoted"']


def test_negatives_do_not_depend_on_the_order_of_judgments():
    responses, judgments = [], []
    for i in range(30):
        rs, js = judged(f"i{i}", "nnyn")
        responses += rs
        judgments += js
    want = select_negatives(responses, judgments, seed=3)
    assert select_negatives(responses[::-1], judgments[::-1], seed=3) == want


def _levenshtein(x, y):
    """The textbook O(nm) table, as a reference."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(y) + 1)] for i in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] != y[j - 1]))
    return d[-1][-1]


def test_edit_distance_matches_a_reference_levenshtein_on_random_token_lists():
    import random

    rng = random.Random(0)
    for _ in range(300):
        words = ["a", "b", "c", "d", "e,", "\u00e9t\u00e9", "x" * 30]
        x = [rng.choice(words) for _ in range(rng.randrange(0, 25))]
        y = [rng.choice(words) for _ in range(rng.randrange(0, 25))]
        assert edit_distance(" ".join(x), "\n ".join(y)) == _levenshtein(x, y)


def test_edit_distance_is_compiled():
    """Old code ran a pure-Python O(nm) loop: about an hour of CPU for paper-scale pairs."""
    from rapidfuzz.distance import Levenshtein

    from spar.selfplay import pairs

    assert getattr(pairs, "Levenshtein", None) is Levenshtein


# ---- resumable stages ---------------------------------------------------------------------


def test_run_chunked_resumes_after_a_crash_with_the_same_records(tmp_path):
    items = [f"x{i}" for i in range(10)]

    def process(chunk, c):
        return [{"key": x, "chunk": c, "value": f"{x}@{c}"} for x in chunk]

    want = tmp_path / "want.jsonl"
    run_chunked(items, lambda x: x, want, 3, process, lambda r: r["key"])

    out, calls = tmp_path / "out.jsonl", []

    def crashing(chunk, c):
        calls.append(c)
        if c == 2:
            raise KeyboardInterrupt  # killed mid-stage
        return process(chunk, c)

    with pytest.raises(KeyboardInterrupt):
        run_chunked(items, lambda x: x, out, 3, crashing, lambda r: r["key"])
    assert not out.exists()  # never final before it is whole
    partial = tmp_path / "out.jsonl.partial"
    with open(partial, "a") as f:  # records of chunk 2 written before the kill, and a torn line
        f.write(json.dumps({"key": "x6", "chunk": 2, "value": "stale"}) + '\n{"key": "x7", "ch')
    calls.clear()
    run_chunked(items, lambda x: x, out, 3, lambda ch, c: (calls.append(c), process(ch, c))[1],
                lambda r: r["key"])
    assert calls == [2, 3]  # finished chunks are not recomputed
    assert out.read_text() == want.read_text()  # nothing lost, nothing duplicated, same order
    assert not partial.exists() and not (tmp_path / "out.jsonl.chunks").exists()
    assert run_chunked(items, lambda x: x, out, 3, lambda ch, c: 1 / 0, lambda r: r["key"]) == out  # final: skipped


def test_manifest_records_status_counts_checksum_and_survives_reload(tmp_path):
    rd = RunDir(tmp_path / "run")
    f = rd.iter_dir(0) / "negatives.jsonl"
    f.write_text('{"a": 1}\n')
    rd.record(0, "negatives", file=f, count=1, seconds=0.1)
    again = RunDir(tmp_path / "run")
    entry = again.stage(0, "negatives")
    assert again.done(0, "negatives") and not again.done(0, "search")
    assert entry["count"] == 1 and entry["file"] == "iter_0/negatives.jsonl" and len(entry["sha256"]) == 64
    assert read_jsonl(f) == [{"a": 1}]
