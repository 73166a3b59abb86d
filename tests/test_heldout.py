"""The held-out split is held out by construction, and evaluation reports three scores (issue 12 item 3).

Training instructions never use a held-out kind, a held-out phrasing or a held-out seed frame; the held-out
split holds seen kinds in unseen wording and unseen kinds. heldout_scores splits the score into seen kinds,
unseen kinds and soft constraints (by the judge), computed here exactly with scripted backends.
"""

import json
import re

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.config import HELDOUT_KINDS, load_config
from spar.constraints import is_soft
from spar.data import seed_tasks, synth
from spar.errors import UserError
from spar.judge import LLMJudge
from spar.records import Instruction
from spar.selfplay.evaluate import heldout_scores


def test_training_never_sees_heldout_kinds_phrasings_or_seed_frames(monkeypatch):
    """Old code split by a hash of the finished prompt: the same kinds, phrasings and frames on both sides."""
    frames = {f: (short, g, i) for short, groups in ((False, seed_tasks.FRAMES), (True, seed_tasks.SHORT_FRAMES))
              for g, fs in groups.items() for i, f in enumerate(fs)}
    keys = {f: n for n, f in enumerate(frames)}
    monkeypatch.setattr(seed_tasks, "_fill", lambda frame, rng: f"Zzframe{keys[frame]}zz. Write it well.")

    def marked(cid, kw, rng, choices=None):
        index = rng.choice(choices) if choices else rng.randrange(len(synth.phrasings(cid)) or 1)
        return f"<{cid}#{index}>"

    monkeypatch.setattr(synth, "phrase", marked)
    made = synth.synthesize(3000, seed=2)
    by_key = {n: f for f, n in keys.items()}
    held = [i for i in made if i.split == "heldout"]
    assert 150 < len(held) < 450
    unseen = [i for i in held if any(c["id"] in HELDOUT_KINDS for c in i.constraints)]
    assert 0.3 < len(unseen) / len(held) < 0.7  # both held-out scores get data
    assert {c["id"] for i in unseen for c in i.constraints} >= set(HELDOUT_KINDS)
    for inst in made:
        frame = by_key[int(re.search(r"zzframe(\d+)zz", inst.prompt, re.I).group(1))]
        assert seed_tasks.heldout_frame(frames[frame][2]) == (inst.split == "heldout"), inst.prompt
        for c in inst.constraints:
            if is_soft(c["id"]):
                continue
            index = int(inst.prompt.split(f"<{c['id']}#")[1].split(">")[0])
            held_indices = synth.heldout_phrasings(c["id"])
            assert held_indices, c["id"]  # every kind has phrasings to hold out
            if inst.split == "train":
                assert c["id"] not in HELDOUT_KINDS and index not in held_indices, (c["id"], index)
            else:
                assert index in held_indices, (c["id"], index)


def test_heldout_kinds_is_a_checked_config_key():
    assert load_config(None, ["data.heldout_kinds=[sentence:acrostic]"]).data.heldout_kinds == ["sentence:acrostic"]
    with pytest.raises(UserError, match=r"data.heldout_kinds='sentence:acrostik'.*did you mean sentence:acrostic"):
        load_config(None, ["data.heldout_kinds=[sentence:acrostik]"])
    # no held-out kinds: training may use every kind
    train = [i for i in synth.synthesize(1500, seed=1, heldout_kinds=()) if i.split == "train"]
    assert {c["id"] for i in train for c in i.constraints} & set(HELDOUT_KINDS)


def _inst(iid, *constraints):
    return Instruction(id=iid, prompt=f"Task {iid}.", constraints=list(constraints), split="heldout")


LOWER = {"id": "change_case:english_lowercase", "kwargs": {}}
NO_COMMA = {"id": "punctuation:no_comma", "kwargs": {}}
ACROSTIC = {"id": "sentence:acrostic", "kwargs": {"word": "cat"}}
FORMAL = {"id": "soft:style", "kwargs": {"text": "Write in a formal tone.", "taxonomy": "General/style"}}
HAPPY = {"id": "soft:sentiment", "kwargs": {"text": "Sound cheerful.", "taxonomy": "General/sentiment"}}


def test_three_scores_exact(tmp_path):
    """Seen kinds, unseen kinds and soft constraints scored apart (old code: one pooled score, no soft score)."""
    answers = {
        "Task a.": "all lower, with a comma",            # seen: lowercase ok, no_comma fails -> prompt fails
        "Task b.": "all lower and no comma",             # seen: both ok
        "Task c.": "Cats\nAre\nTired",                   # unseen: acrostic c-a-t ok, lowercase fails
        "Task d.": "dogs\nare\nhere",                    # unseen: acrostic fails
        "Task e.": "this is plain english text",         # seen: lowercase ok
    }
    actor = ScriptedBackend(respond=lambda chat, i: answers[chat[-1]["content"]])
    items = [_inst("a", LOWER, NO_COMMA, FORMAL), _inst("b", LOWER, NO_COMMA), _inst("c", ACROSTIC, LOWER),
             _inst("d", ACROSTIC, HAPPY), _inst("e", LOWER, FORMAL)]
    # the judge sees the soft requirement alone; formal: yes for a, no for e; cheerful: yes for d
    verdicts = {("Write in a formal tone.", "all lower, with a comma"): "Yes",
                ("Write in a formal tone.", "this is plain english text"): "No",
                ("Sound cheerful.", "dogs\nare\nhere"): "Yes"}

    def judge_reply(chat, i):
        text = chat[-1]["content"]
        prompt = text.split("[Instruction]\n")[1].split("\n\n[Response]")[0]
        response = text.split("[Response]\n")[1].split("\n\nGo through")[0].strip()
        return f"Checked.\nVerdict: {verdicts[(prompt, response)]}"

    judge = LLMJudge(ScriptedBackend(respond=judge_reply), n=1, resample=0)
    scores = heldout_scores(actor, items, 64, tmp_path, HELDOUT_KINDS, lambda: judge)
    assert scores["heldout_n"] == 5 and scores["heldout_prompt_level"] == 2 / 5
    assert scores["heldout_inst_level"] == 5 / 8  # a 1/2, b 2/2, c 1/2, d 0/1, e 1/1
    assert scores["heldout_seen_n"] == 3 and scores["heldout_seen_prompt_level"] == 2 / 3
    assert scores["heldout_seen_inst_level"] == 4 / 5
    assert scores["heldout_unseen_n"] == 2 and scores["heldout_unseen_prompt_level"] == 0.0
    assert scores["heldout_unseen_inst_level"] == 1 / 2  # only the unseen kinds' constraints: acrostic c ok, d not
    assert scores["heldout_soft_n"] == 3 and scores["heldout_soft"] == 2 / 3
    rows = [json.loads(x) for x in (tmp_path / "heldout_responses.jsonl").read_text().splitlines()]
    assert [r["group"] for r in rows] == ["seen", "seen", "unseen", "unseen", "seen"]
    assert rows[0]["soft_met"] == [True] and rows[4]["soft_met"] == [False]
    assert json.loads((tmp_path / "heldout.json").read_text()) == scores
    # without a judge (eval.soft_judge: false) no LLM call and no soft score
    plain = heldout_scores(actor, items, 64, tmp_path / "plain", HELDOUT_KINDS)
    assert "heldout_soft" not in plain and plain["heldout_seen_prompt_level"] == 2 / 3


def test_soft_constraints_are_judged_by_one_fixed_model_in_every_evaluation(tmp_path, monkeypatch):
    """The soft score of iteration t used to be judged by iteration t's trained refiner, so a score could move
    because the judge changed; now every evaluation asks the starting refiner (or eval.soft_judge_model)."""
    from spar.backends.scripted import ScriptedBackend
    from spar.config import load_config
    from spar.records import Instruction
    from spar.selfplay.loop import Loop

    asked = []

    def backend(self, role, name):
        asked.append((role, name))
        return ScriptedBackend(respond=lambda chat, i: "Fine.\nVerdict: Yes", name=name)

    monkeypatch.setattr(Loop, "backend", backend)
    item = Instruction(id="h1", prompt="Write calmly about rain.", split="heldout",
                       constraints=[{"id": "soft:style", "kwargs": {"text": "Write calmly.", "taxonomy": "style"}}])
    for extra, judge in (([], "tiny-random"), (["eval.soft_judge_model=judge-model"], "judge-model")):
        asked.clear()
        cfg = load_config(None, [f"out_dir={tmp_path}", "refiner.name=tiny-random", "eval.soft_judge=true", *extra])
        scores = Loop(cfg)._evaluate("runs/x/iter_2/actor", [item], tmp_path / "eval")
        assert ("refiner", judge) in asked and all(n in (judge, "runs/x/iter_2/actor") for _, n in asked)
        assert scores["heldout_soft"] == 1.0
