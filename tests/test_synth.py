"""Instruction synthesis, leak check, LLM evolution, stats."""

import json

from spar.backends import make_backend
from spar.backends.scripted import ScriptedBackend
from spar.cli import main
from spar.constraints import get, is_soft
from spar.data.evolve import evolve
from spar.data.stats import stats
from spar.data.synth import CONFLICTS, GROUPS, REPEAT, REPEAT_OK, WHOLE, leak_check, synthesize
from spar.records import Instruction, read_jsonl


def test_deterministic_distinct_split_and_valid():
    a, b = synthesize(600, seed=3), synthesize(600, seed=3)
    assert a == b and synthesize(50, seed=4) != a[:50]
    assert len({i.prompt for i in a}) == 600 and len({i.id for i in a}) == 600
    assert 0.03 < sum(i.split == "heldout" for i in a) / 600 < 0.2
    for inst in a:
        hard = [c for c in inst.constraints if not is_soft(c["id"])]
        assert 1 <= len(hard) <= 3
        for c in hard:
            get(c["id"]).validate(c["kwargs"])


def test_conflict_rules_hold():
    for inst in synthesize(2000, seed=1):
        ids = [c["id"] for c in inst.constraints if not is_soft(c["id"])]
        for members in GROUPS.values():
            assert len([i for i in ids if i in members]) <= 1, (ids, inst.prompt)
        if any(i in WHOLE for i in ids):
            assert len(ids) == 1


def test_pairwise_conflicts_and_repeat_rules_hold():
    """New kinds bring new clashes (a rule for every paragraph vs a title line; every sentence starting with one
    letter vs 'Step 1:' lines), and the repeated request holds every other constraint sentence (banned words, commas,
    digits), so it may only go with kinds that text cannot break."""
    for inst in synthesize(3000, seed=5):
        ids = [c["id"] for c in inst.constraints if not is_soft(c["id"])]
        for a, b in CONFLICTS:
            assert not (set(ids) & a and set(ids) & b), (ids, inst.prompt)
        if REPEAT in ids:
            assert all(i in REPEAT_OK for i in ids if i != REPEAT), ids


def test_every_kind_is_synthesized_and_checks_its_own_kwargs():
    from spar.constraints import REGISTRY

    made = synthesize(6000, seed=0)
    seen = {c["id"] for inst in made for c in inst.constraints}
    assert set(REGISTRY) <= seen, sorted(set(REGISTRY) - seen)


def test_seed_tasks_are_many_and_varied():
    """The old seeds were 37 frames x 40 subjects; now tasks are composed from parts, of many genres and lengths."""
    import random

    from spar.data.seed_tasks import count_seed_tasks, draw_task

    assert count_seed_tasks() > 50_000
    rng = random.Random(0)
    tasks = [draw_task(rng) for _ in range(5000)]
    assert len({t.text for t in tasks}) > 4500
    assert len({t.genre for t in tasks}) >= 18
    lengths = [len(t.text.split()) for t in tasks]
    assert min(lengths) < 8 and max(lengths) > 50  # one-liners and tasks carrying a passage
    assert any(t.short for t in tasks) and any("\n" in t.text for t in tasks)


def test_constraint_sentences_take_several_layouts():
    made = synthesize(2000, seed=0)
    assert any("\n- " in i.prompt for i in made)  # a requirement list
    assert any("\n1. " in i.prompt for i in made)  # a numbered one
    assert any(not i.prompt.startswith(t) for i in made for t in ["Write", "Explain"])


def test_repeat_prompt_quotes_the_request_before_it():
    for inst in synthesize(3000, seed=2):
        for c in inst.constraints:
            if c["id"] == "combination:repeat_prompt":
                assert inst.prompt.startswith(c["kwargs"]["prompt_to_repeat"] + "\n")
                assert get(c["id"]).check(inst.prompt, c["kwargs"])


def test_every_taxonomy_class_is_represented():
    s = stats(synthesize(3000, seed=0))
    assert set(s["taxonomy_classes"]) == {"Format", "Content", "General"}
    for kind in ["Format/length", "Format/text format", "Format/character format", "Format/template",
                 "Format/punctuation", "Format/numeric format", "Content/keyword", "Content/symbol", "Content/sentence",
                 "Content/genre",
                 "General/language", "General/situation", "General/language style", "General/sentiment"]:
        assert s["taxonomy_kinds"].get(kind, 0) > 0, kind


def test_no_benchmark_prompt_leaks_in(ifeval_sample):
    assert leak_check(synthesize(5000, seed=0), ifeval_sample) == []


def test_leak_check_catches_near_duplicates(ifeval_sample):
    """A benchmark prompt with one word changed is caught; an unrelated one is not."""
    from spar.data.ifeval_rows import load_ifeval

    row = load_ifeval(ifeval_sample)[0]
    words = row.prompt.split()
    words[3] = "zebra"
    near = Instruction("near", " ".join(words))
    far = Instruction("far", "Write a haiku about tea.")
    hits = leak_check([near, far], ifeval_sample)
    assert [h[0] for h in hits] == ["near"] and hits[0][2] >= 0.8


def test_evolve_parses_drops_none_and_retries():
    seeds = [Instruction("a", "Write a poem."), Instruction("b", "Describe a cat."), Instruction("c", "Plan a trip.")]
    b = ScriptedBackend(["<instruction>Write a poem in exactly 4 lines.</instruction>", "None", "garbled",
                         "<instruction>Plan a three-day trip to Rome in under 100 words.</instruction>"])
    out = evolve(seeds, b, retries=1)
    assert out[0].prompt == "Write a poem in exactly 4 lines." and out[0].id == "a-evo"
    assert out[1] is None  # an explicit None drops the seed
    assert out[2].prompt.startswith("Plan a three-day trip")  # retried after a garbled answer
    assert len(b.calls) == 2 and len(b.calls[1][0]) == 1
    assert all(c["id"].startswith("soft:") and "/" in c["kwargs"]["taxonomy"] for c in out[0].constraints)


def test_data_cli(tmp_path, capsys):
    out = tmp_path / "i.jsonl"
    assert main(["data", "synth", "--n", "200", "--out", str(out)]) == 0
    assert len(read_jsonl(out, Instruction)) == 200
    assert main(["data", "stats", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert s["instructions"] == 200
    evolved = tmp_path / "e.jsonl"
    seeds = tmp_path / "s.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"x{i}", "prompt": f"Task {i}"}) + "\n" for i in range(3)))
    assert main(["data", "evolve", "--in", str(seeds), "--out", str(evolved), "--backend", "hf",
                 "--model", "tiny-random", "--retries", "0", "--max-new-tokens", "8"]) == 0
    assert main(["data", "evolve", "--in", str(seeds), "--out", str(evolved), "--backend", "hf",
                 "--model", "tiny-random", "--retries", "0", "--max-new-tokens", "8"]) == 0
    assert "evolved 0 of 0" in capsys.readouterr().out  # the rerun skipped every seed already tried


def test_tiny_model_evolve_runs():
    backend = make_backend("hf", "tiny-random")
    assert len(evolve([Instruction("a", "Write.")], backend, retries=0, max_new_tokens=8)) == 1


def test_every_kind_has_six_own_phrasings_that_state_its_kwargs():
    """Each kind is worded at least 6 ways, and every wording states the kwargs the check uses (numbers in digits
    or words, the relation's direction, the words, letters and labels), so scoring keeps its meaning."""
    import random

    from spar.constraints import REGISTRY
    from spar.constraints.ifeval_kinds import LANGUAGES
    from spar.data.phrasings import RELATION_FIELDS, number_word, ordinal, phrase, phrasings, sample_kwargs

    fewer, at_least = ("fewer than", "under", "less than", "below"), ("at least", "or more", "no fewer", "minimum")
    rng = random.Random(0)
    for cid in sorted(REGISTRY):
        templates = phrasings(cid)
        assert len(set(templates)) >= 6, cid
        for index in range(len(templates)):
            for _ in range(4):
                kw = sample_kwargs(cid, rng, prompt="Write a note.")
                text = phrase(cid, kw, rng, choices=[index]).lower()
                for key, value in kw.items():
                    if key == "prompt_to_repeat":
                        continue
                    if cid == "language:response_language":
                        value = LANGUAGES[value]
                    if key in {rel for rel, *_ in RELATION_FIELDS.values()}:
                        assert any(w in text for w in (fewer if value == "less than" else at_least)), (cid, text)
                    elif isinstance(value, int):
                        shown = (str(value), number_word(value), ordinal(value))
                        assert any(w in text for w in shown), (cid, key, text)
                    else:
                        for item in value if isinstance(value, list) else [value]:
                            assert str(item).lower() in text, (cid, key, item, text)


def test_no_phrasing_uses_ifeval_wording():
    """The old synthesis drew from describe(), i.e. IFEval's own sentences, for its 25 kinds. No phrasing shares a
    run of 6 words with them (8 for the fixed answers 'My answer is yes.' etc., which the check itself requires)."""
    import random

    from spar.constraints import REGISTRY
    from spar.constraints.ifeval_kinds import IFEVAL_IDS
    from spar.data.contamination import NgramIndex
    from spar.data.phrasings import phrase, phrasings, sample_kwargs

    rng = random.Random(1)
    bench = [(f"{cid}#{k}", get(cid).describe(get(cid).sample_kwargs(rng, prompt="Write a note.")))
             for cid in IFEVAL_IDS for k in range(20)]
    six, eight = NgramIndex(bench, 6), NgramIndex(bench, 8)
    for cid in sorted(REGISTRY):
        index = eight if cid == "detectable_format:constrained_response" else six
        for i in range(len(phrasings(cid))):
            for _ in range(5):
                text = phrase(cid, sample_kwargs(cid, rng, prompt="Write a note."), rng, choices=[i])
                assert index.longest_run(text) is None, (cid, text, index.longest_run(text))
