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


def node(id, parent, depth, response, value, votes=(), reasoning="", critique="", failed=False):
    return {"id": id, "parent": parent, "depth": depth, "response": response, "critique": critique,
            "reasoning": reasoning, "votes": list(votes), "value": value, "label": "", "failed": failed}


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
    """0.0 'also no quotes' judged no (agrees: no quotes); flip 0.0.0 to a no-majority on a quoted answer."""
    tree = tree_with_values()
    tree.nodes[4]["votes"] = [vote("no", "wrong"), vote("no", "wrong"), vote("yes", "ok")]
    tree.nodes[4]["value"] = 1 / 3
    llm = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(), "llm", seed=0)
    grounded = build_rft([tree], [], [], {"i1": inst(1)}, RFTDataConfig(), "verifier", seed=0)
    critiques = lambda ex: sorted(e.messages[-1]["content"] for e in ex if e.kind == "judge")  # noqa: E731
    assert critiques(llm) == ["no: node says no", "wrong"]  # the paper trusts the majority
    assert critiques(grounded) == ["no: node says no"]  # the verifier says '"quoted"' is right


def test_rft_hybrid_judge_examples_carry_the_checked_note():
    examples = build_rft([tree_with_values()], [], [], {"i1": inst(1)}, RFTDataConfig(), "hybrid", seed=0)
    judge = [e for e in examples if e.kind == "judge"]
    assert judge and all("already checked by a program" in e.messages[0]["content"] for e in judge)


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
