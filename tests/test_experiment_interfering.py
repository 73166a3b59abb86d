"""`spar experiment interfering-factors` (paper Fig. 4): the rewrites, the pairs, the story cache, the probe, and a
tiny-model run through the project's DPO trainer."""

import json
from pathlib import Path

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.config import ModelConfig
from spar.experiments import interfering_factors as exp
from spar.experiments.interfering_factors import Settings, Story, make_pairs, prompt, story_parts, uppercase_ratio
from spar.experiments.interfering_factors import usable, with_ratio

STORY = ("**The Keeper**\n\nOnce upon a time, an old man kept a lighthouse by the sea. Every night he lit the lamp. "
         "One evening, a ship came too close to the rocks! He rang the bell, and the sailors were saved. They thanked "
         "him the next day and he smiled.")
ANIMALS = ("fox", "owl", "cat", "bee", "elk", "ant", "yak", "emu")


def settings(out, **over) -> Settings:
    base = dict(pairs=4, heldout=3, ratios=[0.5, 1.0], tolerance=0.1, story_tokens=16, story_temperature=0.7,
                max_new_tokens=6, eval_every=1, seed=0, out=str(out))
    return Settings(**{**base, **over})


def story(animal: str) -> str:
    return (f"The {animal} woke up early on a cold day. It looked for food near the river. Then it met a friend. "
            f"They walked home together at night.")


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_with_ratio_changes_only_case_and_reaches_the_share(ratio):
    out = with_ratio(STORY, ratio)
    assert out.casefold() == STORY.casefold() and len(out) == len(STORY)  # spaces, line breaks, words all kept
    assert abs(uppercase_ratio(out) - ratio) < 0.05
    words = [w for w in out.split() if any(c.isalpha() for c in w)]
    changed = [w for w, o in zip(words, STORY.split()) if w != o]
    assert all(w.upper() == w for w in changed)  # whole words uppercased, nothing lowercased


def test_uppercase_ratio_counts_letters_only():
    assert uppercase_ratio("AB cd 12 !!") == 0.5
    assert uppercase_ratio("123 ...") == 0.0 and uppercase_ratio("") == 0.0
    assert uppercase_ratio("ÉCOLE") == 1.0


def test_story_parts_and_cut_off_last_sentence():
    opening, middle, ending = story_parts(STORY)
    assert opening == "**The Keeper**\n\nOnce upon a time, an old man kept a lighthouse by the sea."
    assert ending == "They thanked him the next day and he smiled."
    assert opening + middle + ending == STORY
    assert exp.cut_to_sentences(STORY + " And the light shone on") == STORY
    assert story_parts("One. Two.") is None


def test_pairs_minimal_differ_in_case_only_interfering_also_in_opening_and_ending():
    stories = [Story(f"train-{i}", f"prompt {i}", 0.5, story(a)) for i, a in enumerate(ANIMALS[:3])]
    assert [usable(s, 0.1) for s in stories] == [None, None, None]
    pairs = make_pairs(stories)
    assert [p.chosen for p in pairs["minimal"]] == [p.chosen for p in pairs["interfering"]]
    for k, (m, i) in enumerate(zip(pairs["minimal"], pairs["interfering"])):
        assert m.rejected == stories[k].text and m.chosen.casefold() == m.rejected.casefold()
        assert abs(uppercase_ratio(m.chosen) - 0.5) <= 0.1
        nxt = story_parts(stories[(k + 1) % 3].text)
        assert i.rejected == nxt[0] + story_parts(stories[k].text)[1] + nxt[2]  # the next story's opening and ending
        assert i.rejected.startswith(f"The {ANIMALS[(k + 1) % 3]} ")
        assert m.prompt == i.prompt == [{"role": "user", "content": f"prompt {k}"}]
        assert (m.source, i.source) == ("minimal", "interfering")


def test_probe_pairs_isolate_one_factor_each():
    stories = [Story(f"heldout-{i}", f"prompt {i}", 0.5, story(a)) for i, a in enumerate(ANIMALS[:3])]
    stories.append(Story("heldout-3", "prompt 3", 0.04, story("yak")))  # already meets its share: no target pair
    stories.append(Story("heldout-4", "prompt 4", 1.0, "Too short. Two."))  # no interfering pair
    probes = exp.probe_pairs(stories, 0.1)
    assert [p for p, _, _ in probes["target"]] == ["prompt 0", "prompt 1", "prompt 2", "prompt 4"]
    for _, chosen, rejected in probes["target"]:
        assert chosen.casefold() == rejected.casefold() and uppercase_ratio(chosen) > uppercase_ratio(rejected)
    assert [p for p, _, _ in probes["interfering"]] == ["prompt 0", "prompt 1", "prompt 2", "prompt 3"]
    _, chosen, rejected = probes["interfering"][3]  # the last story takes the first one's opening and ending
    assert chosen == story("yak") and rejected == story("fox").replace(" fox ", " fox ")
    assert all(uppercase_ratio(c) == pytest.approx(uppercase_ratio(r), abs=0.01) for _, c, r in probes["interfering"])


def test_margins_are_dpo_rewards_against_step_zero():
    first = [(-10.0, -12.0), (-5.0, -5.0)]
    now = [(-8.0, -13.0), (-6.0, -4.0)]  # pair 0: chosen +2, rejected -1 -> +3; pair 1: -1, +1 -> -2
    assert exp.margins(now, first) == {"margin": 0.5, "accuracy": 0.5}
    assert exp.margins(first, first) == {"margin": 0.0, "accuracy": 0.0}
    assert exp.margins([], []) == {"margin": None, "accuracy": None}


def test_completion_logps_sum_the_completion_tokens_whatever_the_batch():
    import torch

    from spar.train.common import load_for_training, resolve_model

    model, tokenizer = load_for_training(resolve_model("tiny-random"))
    items = [("Write a story.", "Once there was a fox."), ("Hi", "A much longer answer than the other one, by far.")]
    batched = exp.completion_logps(model, tokenizer, items, batch_size=2)
    assert batched == pytest.approx(exp.completion_logps(model, tokenizer, items, batch_size=1), abs=1e-4)
    chat = [{"role": "user", "content": "Hi"}]
    head = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(chat + [{"role": "assistant", "content": items[1][1]}], tokenize=False)
    ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    n = len(tokenizer(head, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
    want = sum(logps[j, ids[0, j + 1]].item() for j in range(n - 1, ids.shape[1] - 1))
    assert batched[1] == pytest.approx(want, abs=1e-4)


def test_usable_says_why_not():
    assert usable(Story("a", "p", 0.5, "One sentence. Two sentences."), 0.1) == "under 3 whole sentences"
    assert usable(Story("a", "p", 0.04, story("fox")), 0.1) == "already meets its asked share"
    # three 10-letter words: whole words reach 12/30 uppercase letters at best, 0.1 from the asked 0.5
    assert usable(Story("a", "p", 0.5, "Abcdefghij. Klmnopqrst. Uvwxyzabcd."), 0.05) == \
        "too short to reach its share by whole words"
    assert usable(Story("a", "p", 0.5, "Abcdefghij. Klmnopqrst. Uvwxyzabcd."), 0.1) is None


def test_measure_on_known_answers():
    heldout = [exp.Prompt("h0", "p", 0.5), exp.Prompt("h1", "p", 1.0), exp.Prompt("h2", "p", 0.5)]
    answers = ["ABCD efgh. Then more.", "abc. then more.", "ONE TWO. x"]
    first = ["abcd EFGH. Other.", "A b c. Then more.", "one two. y"]
    m = exp.measure(heldout, answers, first, tolerance=0.1)
    produced = [uppercase_ratio(a) for a in answers]
    assert produced[1] == 0.0 and produced[0] == 5 / 16  # ABCD and the T of Then, of 16 letters
    assert m["mean_gap"] == pytest.approx((abs(5 / 16 - 0.5) + 1.0 + abs(produced[2] - 0.5)) / 3)
    assert m["within"] == 0 and m["mean_ratio"] == pytest.approx(sum(produced) / 3)
    # openings compared case folded: "ABCD efgh." is "abcd EFGH."; "abc." is not "A b c."; "ONE TWO." is "one two."
    assert m["opening_changed"] == pytest.approx(1 / 3)
    assert m["produced_by_asked"] == pytest.approx({"0.5": (produced[0] + produced[2]) / 2, "1.0": 0.0})
    assert m["mean_words"] == pytest.approx((4 + 3 + 3) / 3)


def test_heldout_prompts_use_no_training_subject_or_phrasing_and_cover_every_share(tmp_path):
    s = settings(tmp_path, ratios=[0.25, 0.5, 0.75, 1.0])
    heldout = [prompt(i, "heldout", s) for i in range(16)]
    train = [prompt(i, "train", s) for i in range(200)]
    assert {h.ratio for h in heldout} == {0.25, 0.5, 0.75, 1.0}
    assert sorted(h.ratio for h in heldout) == sorted([0.25, 0.5, 0.75, 1.0] * 4)
    for h in heldout:
        assert not any(subj in h.text for subj in exp.TRAIN_SUBJECTS)
        assert f"{round(100 * h.ratio)}%" in h.text
    assert not {t.text for t in train} & {h.text for h in heldout}
    assert prompt(5, "train", s) == prompt(5, "train", s) and prompt(5, "train", settings(tmp_path, seed=1)) != \
        prompt(5, "train", s)


def test_base_stories_are_sampled_in_rounds_and_cached(tmp_path, monkeypatch):
    """Two-sentence stories are skipped and counted; a second call samples nothing (the cache answers)."""
    s = settings(tmp_path / "out")
    Path(s.out).mkdir()
    backends = []

    def open_backend(model, options):
        backends.append(ScriptedBackend(respond=lambda chat, i: story("owl") if "astronaut" not in chat[-1]["content"]
                                        else "Too short. Only two."))
        return backends[-1]

    monkeypatch.setattr(exp, "_open_backend", open_backend)
    model = ModelConfig(name="tiny-random")
    kept, heldout, counts = exp.base_stories(model, {}, s, progress=lambda m: None)
    assert len(kept) == 4 and counts["used"] == 4 and backends[0].closed
    assert [h.id for h in heldout] == ["heldout-0", "heldout-1", "heldout-2"] and heldout[0].text == story("owl")
    # one call per round of training prompts, then one for the held-out prompts
    assert [len(chats) for chats, _ in backends[0].calls][-1] == 3
    # stories are taken in prompt order: the astronaut prompts before the 4th kept one were skipped
    looked_at = [prompt(i, "train", s) for i in range(int(kept[-1].id.split("-")[1]) + 1)]
    assert [k.id for k in kept] == [p.id for p in looked_at if "astronaut" not in p.text]
    assert counts["skipped"] == ({"under 3 whole sentences": len(looked_at) - 4} if len(looked_at) > 4 else {})
    lines = (Path(s.out) / "stories.jsonl").read_text().splitlines()
    assert len(lines) == counts["generated"] and json.loads(lines[0])["model"] == "tiny-random"
    again, heldout2, counts2 = exp.base_stories(model, {}, s, progress=lambda m: None)
    assert counts2["generated"] == 0 and len(backends) == 1 and again == kept and heldout2 == heldout
    # other story settings are another cache entry: sampled anew, the first entry kept in the file
    _, _, counts3 = exp.base_stories(model, {}, settings(tmp_path / "out", story_tokens=17),
                                     progress=lambda m: None)
    assert counts3["generated"] > 0
    assert len((Path(s.out) / "stories.jsonl").read_text().splitlines()) == counts["generated"] + counts3["generated"]


def test_too_few_usable_stories_is_a_user_error(tmp_path, monkeypatch):
    s = settings(tmp_path / "out")
    Path(s.out).mkdir()
    monkeypatch.setattr(exp, "_open_backend", lambda model, options: ScriptedBackend(reply="No story here."))
    with pytest.raises(exp.UserError, match=r"--pairs 4: only 0 of the model's stories make a pair \(\d+ under 3 "
                                            r"whole sentences\); lower --pairs"):
        exp.base_stories(ModelConfig(name="tiny-random"), {}, s, progress=lambda m: None)


def test_probe_answers_as_the_hf_backend_does():
    """The probe's greedy answers (the model in memory) are the hf backend's greedy answers."""
    from spar.backends.base import SamplingParams
    from spar.backends.hf import HFBackend
    from spar.train.common import load_for_training, resolve_model

    prompts = ["Write a short story about a fox.", "Short story, topic: a toy soldier."]
    backend = HFBackend("tiny-random", batch_size=1)
    want = [r[0].text for r in backend.generate([[{"role": "user", "content": p}] for p in prompts],
                                                SamplingParams(n=1, temperature=0.0, max_new_tokens=8))]
    backend.close()
    model, tokenizer = load_for_training(resolve_model("tiny-random"))
    model.train()
    assert exp.greedy_answers(model, tokenizer, prompts, 8, batch_size=1) == want
    assert model.training  # the mode is given back


def write_cache(out: Path, s: Settings, n: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stories.jsonl", "w") as f:
        for i, p in enumerate([prompt(i, "train", s) for i in range(n)] +
                              [prompt(i, "heldout", s) for i in range(s.heldout)]):
            f.write(json.dumps({"model": "tiny-random", "seed": s.seed, "story_tokens": s.story_tokens,
                                "story_temperature": s.story_temperature, "id": p.id, "prompt": p.text,
                                "ratio": p.ratio, "text": story(ANIMALS[i % len(ANIMALS)])}) + "\n")


def test_cli_on_tiny_model_trains_both_conditions_and_tracks_every_step(tmp_path, capsys):
    out = tmp_path / "exp"
    s = settings(out)
    write_cache(out, s, 7)  # the first round looks at 1.25 x 4 + 2 prompts
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: tiny-random\npairs: 4\nheldout: 3\nratios: [0.5, 1.0]\nstory_tokens: 16\n"
                   "max_new_tokens: 6\neval_every: 1\nout: " + str(tmp_path / "from-config") + "\n")
    assert main(["experiment", "interfering-factors", "--config", str(cfg), "--out", str(out)]) == 0
    assert not (tmp_path / "from-config").exists()  # the command line wins over the file
    result = json.loads((out / "interfering.json").read_text())
    assert result["stories"] == {"generated": 0, "used": 4, "skipped": {}}  # all from the cache
    assert result["dpo"]["lr"] == 3e-5 and result["dpo"]["sft_weight"] == 0.1 and result["dpo"]["batch_size"] == 2
    assert result["dpo"]["lr_scheduler"] == "constant" and result["dpo"]["beta"] == 0.1
    for c in ("minimal", "interfering"):
        assert result["training"][c]["steps"] == 2  # 4 pairs, 2 per step, one epoch
        assert [p["step"] for p in result["curves"][c]] == [0, 1, 2]
        assert [e["step"] for e in result["training"][c]["log"]] == [1, 2]
        assert result["pairs"][c]["pairs"] == 4
        assert {"mean_gap", "within", "mean_ratio", "opening_changed", "mean_words"} <= set(result["curves"][c][0])
        assert set(result["curves"][c][0]["produced_by_asked"]) == {"0.5", "1.0"}
        assert result["curves"][c][0]["opening_changed"] == 0.0
    assert result["probe_pairs"] == {"target": 3, "interfering": 3}
    for c in ("minimal", "interfering"):
        first, *later = result["curves"][c]
        assert first["target_margin"] == first["interfering_margin"] == 0.0 and first["target_accuracy"] == 0.0
        assert all(p["target_margin"] is not None and p["interfering_margin"] is not None for p in later)
    assert result["pairs"]["minimal"]["mean_edit_distance_casefolded"] == 0.0
    assert result["pairs"]["interfering"]["mean_edit_distance_casefolded"] > 0.0
    # step 0 is the same model in both conditions
    assert result["curves"]["minimal"][0] | {"seconds": 0} == result["curves"]["interfering"][0] | {"seconds": 0}
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 2 * 3 * 3
    step0 = {(a["condition"], a["prompt_id"]): a["text"] for a in answers if a["step"] == 0}
    assert all(step0["minimal", k] == step0["interfering", k] for _, k in step0)
    minimal = [json.loads(line) for line in (out / "pairs_minimal.jsonl").read_text().splitlines()]
    assert [p["rejected"] for p in minimal] == [story(a) for a in ANIMALS[:4]]
    assert (out / "interfering.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    printed = capsys.readouterr().out
    assert "target margin" in printed and "'loss'" not in printed  # the trainer's log dicts stay off stdout
    assert (out / "table.txt").read_text().strip() in printed
    assert not list(out.glob(".train-*-work"))  # the trainer's scratch folders are removed


@pytest.mark.parametrize("flags, message", [
    (["--pairs", "1"], "'--pairs 1': must be >= 2"),
    (["--ratios", "0.5,1.5"], "'--ratios 1.5': must be between 0.0 and 1.0"),
    (["--ratios", ","], "give comma-separated shares"),
    (["--tolerance", "x"], "'--tolerance x': must be a number"),
    (["--eval-every", "0"], "'--eval-every 0': must be >= 1"),
    (["--lr", "0"], "lr"),
    (["--lr-scheduler", "wobbly"], "set here by --lr"),
    (["--model", "tiny-randm"], "did you mean tiny-random"),
    (["--timeout", "5"], "an openai backend setting"),
    (["--config", "missing.yaml"], "--config missing.yaml: no such file"),
])
def test_bad_flags_are_one_line_user_errors(flags, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "interfering-factors", "--model", "tiny-random", "--out", str(tmp_path / "o"),
                 *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("spar experiment: error:") and message in err
    assert not (tmp_path / "o").exists()


def test_unknown_config_key_names_this_experiment(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: tiny-random\nsteps: 4\n")
    assert main(["experiment", "interfering-factors", "--config", str(cfg)]) == 2
    assert "'steps' is not a flag of `spar experiment interfering-factors`" in capsys.readouterr().err


def test_the_cpu_preset_opens_with_its_command_and_its_settings_are_valid():
    import argparse

    import yaml

    path = Path(__file__).parent.parent / "configs" / "experiments" / "interfering-cpu.yaml"
    text = path.read_text()
    assert text.startswith("# spar experiment interfering-factors --config configs/experiments/interfering-cpu.yaml")
    parser = argparse.ArgumentParser()
    exp.add_arguments(parser)
    args = parser.parse_args(["--config", str(path)])
    from spar.experiments.scaling import apply_config

    apply_config(args, args._flag_dests, "interfering-factors")
    s, model, dpo = exp.settings(args)
    assert model.name == "smollm2-135m-instruct" and s.pairs >= 32 and yaml.safe_load(text)["out"] == s.out
