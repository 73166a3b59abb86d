"""Inference-time strategies: greedy, best-of-N, BFS/DFS refinement under a budget."""

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.decoding import decode
from spar.judge import VerifierJudge
from spar.records import Instruction, Response, read_jsonl, write_jsonl

NO_COMMA = Instruction("a", "List two fruits without commas.", [{"id": "punctuation:no_comma", "kwargs": {}}])


def actor_and_refiner(samples=("apple, pear",)):
    def respond(chat, i):
        if "Now rewrite" in chat[-1]["content"]:
            return "drop the comma\n<refined>apple and pear</refined>" if i == 1 else "<refined>apple, pear</refined>"
        return samples[i % len(samples)]
    return ScriptedBackend(respond=respond)


def test_greedy():
    out = decode([NO_COMMA], actor_and_refiner())
    assert out[0].text == "apple, pear" and out[0].generated == 1


def test_best_of_n_picks_highest_value_ties_to_first():
    b = actor_and_refiner(samples=("a, b", "apple pear", "kiwi fig"))
    out = decode([NO_COMMA], b, VerifierJudge(), strategy="best_of_n", budget=3)
    assert out[0].text == "apple pear" and out[0].generated == 3


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_tree_search_refines_a_wrong_greedy_answer(strategy):
    out = decode([NO_COMMA], actor_and_refiner(), VerifierJudge(), strategy=strategy, budget=4)
    assert out[0].text == "apple and pear" and out[0].value == 1.0
    assert out[0].generated == 4  # greedy + one level of 3 refinements


def test_budget_counts_generated_responses():
    out = decode([NO_COMMA], actor_and_refiner(), VerifierJudge(), strategy="bfs", budget=2)
    assert out[0].generated == 2 and out[0].text == "apple, pear"  # the one refinement allowed fails


def test_right_greedy_answer_is_kept():
    out = decode([NO_COMMA], actor_and_refiner(samples=("apple pear",)), VerifierJudge(), strategy="bfs", budget=8)
    assert out[0].text == "apple pear" and out[0].generated == 1


@pytest.mark.parametrize("strategy", ["bfs", "dfs"])
def test_a_refinement_judged_no_better_does_not_replace_the_greedy_answer(strategy):
    """Every refinement still has a comma: judged as wrong as the greedy answer (value 0 each), so the greedy
    answer stays, with the refinements it cost counted."""
    refiner = ScriptedBackend(respond=lambda chat, i: "<refined>kiwi, fig</refined>")
    out = decode([NO_COMMA], actor_and_refiner(), VerifierJudge(), refiner, strategy=strategy, budget=4)
    assert out[0].text == "apple, pear" and out[0].value == 0.0 and out[0].generated == 4


def test_errors():
    with pytest.raises(ValueError, match="needs a judge"):
        decode([NO_COMMA], actor_and_refiner(), strategy="bfs")
    with pytest.raises(ValueError, match="unknown strategy"):
        decode([NO_COMMA], actor_and_refiner(), strategy="beam")


def test_generate_cli_with_strategy_on_tiny_model(tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [NO_COMMA])
    out = tmp_path / "out.jsonl"
    assert main(["generate", "--model", "tiny-random", "--in", str(inp), "--out", str(out), "--strategy", "bfs",
                 "--budget", "4", "--judge", "verifier", "--max-new-tokens", "8"]) == 0
    (r,) = read_jsonl(out, Response)
    assert r.instruction_id == "a" and r.model.endswith("+bfs")
