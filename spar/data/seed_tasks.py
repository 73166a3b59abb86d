"""Seed tasks for instruction synthesis: realistic user requests composed from parts, written for this project.

    task = draw_task(rng)          # SeedTask(text, genre, short)
    count_seed_tasks()             # how many distinct tasks the frames can make

A frame is a request of one genre (email, product description, story,
plan, review, recipe, summary of a given passage, dialogue, FAQ, speech,
poem, ad, ...) with `{slots}` filled from the vocabularies in
seed_parts.py; `{passage}` is a short text made by passages.py. Frames
vary in length and register: a bare request, a request with context, a
question. `short` frames ask for a few lines (a haiku, a slogan), where
length and layout constraints would not fit.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass

from spar.data import seed_parts as P
from spar.data.passages import count_passages, make_passage
from spar.data.seed_parts import SOFT, SOFT_TAXONOMY  # noqa: F401  (synth reads them from here)

SLOTS: dict[str, list[str]] = {
    "topic": P.TOPIC, "audience": P.AUDIENCE, "recipient": P.RECIPIENT, "purpose": P.PURPOSE,
    "situation": P.SITUATION, "product": P.PRODUCT, "brand": P.BRAND, "service": P.SERVICE, "place": P.PLACE,
    "occasion": P.OCCASION, "character": P.CHARACTER, "setting": P.SETTING, "event": P.EVENT, "dish": P.DISH,
    "condition": P.RECIPE_CONDITION, "item": P.REVIEW_ITEM, "goal": P.GOAL, "timeframe": P.TIMEFRAME,
    "concept": P.CONCEPT, "pair": P.COMPARISON, "people": P.PEOPLE_PAIR, "motion": P.MOTION,
    "announcement": P.ANNOUNCEMENT, "job": P.JOB, "thing": P.THING, "ad_format": P.AD_FORMAT, "trip": P.TRIP,
}

FRAMES: dict[str, list[str]] = {
    "email": [
        "Write an email to {recipient} to {purpose}.",
        "Draft a message to {recipient} in which I {purpose}.",
        "I need to {purpose}. Can you write the email to {recipient} for me?",
        "Help me write an email to {recipient}. The situation: {situation}.",
        "Write a short, friendly note to {recipient} to {purpose}.",
        "Compose an email to {audience} about {topic}.",
    ],
    "letter": [
        "Write a letter to {recipient} about {topic}.",
        ("Write a letter of complaint to {brand} about {product} that I bought from them and that broke "
         "within a week."),
        "Write a letter from {character} to an old friend, set in {setting}.",
        "Write an open letter to {audience} about {topic}.",
        "Write a thank-you letter to {recipient} for their help with {occasion}.",
        "Write a letter to the editor of a local paper arguing that {motion}.",
    ],
    "product": [
        "Write a product description for {product} made by {brand}.",
        "Describe {product} for an online shop, aimed at {audience}.",
        "We are launching {product}. Write the text for its product page.",
        "Write the back-of-the-box copy for {product}.",
        "Write a short listing for {product} on a second-hand marketplace.",
    ],
    "explanation": [
        "Explain {concept} to {audience}.",
        "How would you explain {concept} to {audience}?",
        "I never really understood {concept}. Can you explain it simply?",
        "Write a short explainer on {concept}.",
        "Explain {concept} using an everyday comparison.",
        "What are the main differences between {pair}?",
        "Write an encyclopedia-style entry on {topic}.",
    ],
    "story": [
        "Write a short story about {character} in {setting}.",
        "Write a story in which {character} {event}.",
        "Tell a bedtime story about {character}.",
        "Write the opening scene of a mystery set in {setting}.",
        "Write a fable about {character} with a clear lesson at the end.",
        "Write a piece of flash fiction about {topic}.",
        "Write a story set in {place} about {character} who {event}.",
    ],
    "plan": [
        "Make a plan to help me {goal} in {timeframe}.",
        "Draft a plan covering {timeframe} for {audience} who want to {goal}.",
        "Plan {occasion} on a small budget.",
        "Put together a travel itinerary for {timeframe} in {place}.",
        "Create a weekly schedule for someone trying to {goal}.",
        "Outline a lesson on {concept} for {audience}.",
        "Write an agenda for a meeting about {topic} with {audience}.",
    ],
    "review": [
        "Write a review of {item}.",
        "Write a customer review of {product} after a month of use.",
        "Review {item} for a local newspaper.",
        "Write a balanced review of {item}, covering what works and what doesn't.",
        "Write a short online review of {service}.",
    ],
    "recipe": [
        "Write a recipe for {dish}.",
        "Give me a recipe for {dish} that {condition}.",
        "How do I make {dish}? Please write it as a recipe.",
        "Write a recipe card for {dish} to share with {audience}.",
    ],
    "summary": [
        "Summarize this text:\n\n{passage}",
        "Here is a short article:\n\n{passage}\n\nSummarize it for {audience}.",
        "Rewrite the following for {audience}:\n\n{passage}",
        "Read the passage below and pull out its main facts.\n\n{passage}",
        "Write a headline and an opening paragraph for this story:\n\n{passage}",
        "Turn this text into a social media post:\n\n{passage}",
        "What questions does this text leave unanswered?\n\n{passage}",
        "{passage}\n\nExplain what this means for {audience}.",
    ],
    "dialogue": [
        "Write a dialogue between {people} about {topic}.",
        "Write a phone call between {people} who are planning {occasion}.",
        "Write a scene for a play in which {people} disagree about {topic}.",
        "Write an interview with {character} about {topic}.",
    ],
    "list": [
        "List ways to {goal}.",
        "Give me ideas for {occasion}.",
        "What should I pack for {trip}?",
        "List common mistakes people make when they try to {goal}.",
        "List questions to ask before buying {product}.",
        "Suggest activities for {audience} on a rainy afternoon in {place}.",
    ],
    "faq": [
        "Write an FAQ for {service}.",
        "Write the questions-and-answers page for {service}.",
        "Answer the questions new customers usually ask about {product}.",
        "Write an FAQ for {audience} about {topic}.",
    ],
    "speech": [
        "Write a speech for {occasion}.",
        "Write a toast for {occasion}.",
        "Write a short talk for {audience} about {topic}.",
        "Write the opening remarks for {occasion}, to be given by the organizer.",
        "Write a debate speech arguing that {motion}.",
    ],
    "poem": [
        "Write a poem about {topic}.",
        "Write a poem from the point of view of {thing}.",
        "Write song lyrics about {topic} for {audience}.",
        "Write a free-verse poem set in {setting}.",
        "Write a poem about {character}.",
    ],
    "ad": [
        "Write an advertisement for {product}.",
        "Write {ad_format} for {product} from {brand}.",
        "Write an ad for {service} aimed at {audience}.",
        "Write a job advertisement for {job} at {brand}.",
        "Write a social media post announcing that {announcement}.",
    ],
    "opinion": [
        "Write an opinion piece arguing that {motion}.",
        "Give the arguments for and against the claim that {motion}.",
        "Write a blog post about {topic} for {audience}.",
        "Should I choose between {pair}? Help me weigh them up.",
        "Write a short essay on {topic}.",
    ],
    "news": [
        "Write a news report about {occasion} in {place}.",
        "Write a press release announcing that {announcement}.",
        "Write a newsletter item for {audience} about {topic}.",
        "Write a short bio of {character} for a local magazine.",
    ],
    "advice": [
        "{situation}. What should I do?",
        "Give advice to {audience} about {topic}.",
        "How can I {goal}?",
        "My friend wants to {goal}. What tips would you give her?",
        "Write a short guide for {audience} on how to {goal}.",
    ],
}

SHORT_FRAMES: dict[str, list[str]] = {
    "poem": ["Write a haiku about {topic}.", "Write a limerick about {character}.",
             "Write a two-line rhyme about {thing}."],
    "ad": ["Come up with a slogan for {product}.", "Suggest a name for {service}.",
           "Write a one-line motto for {brand}.", "Write a tagline for {product}."],
    "riddle": ["Write a riddle whose answer is {thing}.", "Write a one-sentence fun fact about {topic}."],
    "message": ["Write a text message to {recipient} to {purpose}.", "Write a tweet about {topic}.",
                "Write a caption for a photo taken in {place}."],
}


@dataclass(frozen=True)
class SeedTask:
    text: str
    genre: str
    short: bool = False


def _slots(frame: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(frame) if name]


def _combinations(frame: str) -> int:
    return math.prod(count_passages() if s == "passage" else len(SLOTS[s]) for s in set(_slots(frame)))


def _fill(frame: str, rng: random.Random) -> str:
    values = {s: make_passage(rng) if s == "passage" else rng.choice(SLOTS[s]) for s in _slots(frame)}
    text = frame.format(**values)
    return text[0].upper() + text[1:]


def _dress(text: str, short: bool, frame: str, rng: random.Random) -> str:
    """Sometimes an opener before the request, and (for a one-paragraph request) a line of context after it."""
    if rng.random() < OPENER_SHARE:
        opener = rng.choice(P.OPENERS)
        # after "Quick request:" the request goes on in lower case; after a full sentence it starts anew
        text = opener + (text[0].lower() + text[1:] if opener.endswith(": ") and text[:2] != "I " else text)
    if not short and not {"audience", "recipient", "passage"} & set(_slots(frame)) and rng.random() < CONTEXT_SHARE:
        text += " " + rng.choice(P.CONTEXTS).format(audience=rng.choice(P.AUDIENCE))
    return text


OPENER_SHARE, CONTEXT_SHARE = 0.2, 0.3
# (genre, frames, frame weights, short): a genre is drawn first, so one with more frames is not favoured; within
# it a frame with more fillings is drawn more often (by the square root), so small frames do not repeat
_LONG = [(g, frames, [math.sqrt(_combinations(f)) for f in frames], False) for g, frames in FRAMES.items()]
_SHORT = [(g, frames, [math.sqrt(_combinations(f)) for f in frames], True) for g, frames in SHORT_FRAMES.items()]


def heldout_frame(index: int) -> bool:
    """Whether a genre's `index`-th frame is held out: every fourth frame (the 4th, 8th, ...) is only ever used by
    held-out instructions, so a held-out request is never one training has seen, worded otherwise."""
    return index % 4 == 3


def _split(groups: list, heldout: bool) -> list:
    out = []
    for genre, frames, weights, short in groups:
        kept = [i for i in range(len(frames)) if heldout_frame(i) == heldout]
        if kept:
            out.append((genre, [frames[i] for i in kept], [weights[i] for i in kept], short))
    return out


_SPLITS = {None: (_LONG, _SHORT), "train": (_split(_LONG, False), _split(_SHORT, False)),
           "heldout": (_split(_LONG, True), _split(_SHORT, True))}


def draw_task(rng: random.Random, short_share: float = 0.1, split: str | None = None) -> SeedTask:
    """One seed task; about `short_share` of them are short ones. `split` ("train" or "heldout") draws only from
    that split's frames (see heldout_frame); None from all."""
    long_groups, short_groups = _SPLITS[split]
    genre, frames, weights, short = rng.choice(short_groups if rng.random() < short_share else long_groups)
    frame = rng.choices(frames, weights=weights)[0]
    return SeedTask(_dress(_fill(frame, rng), short, frame, rng), genre, short)


def count_seed_tasks() -> int:
    """How many distinct seed tasks the frames can make (distinct slot values give distinct texts), with the
    openers and context lines `_dress` may add."""
    contexts = sum(len(P.AUDIENCE) if "{audience}" in c else 1 for c in P.CONTEXTS)
    total = 0
    for short, groups in ((False, FRAMES), (True, SHORT_FRAMES)):
        for frame in (f for frames in groups.values() for f in frames):
            dressed = short or {"audience", "recipient", "passage"} & set(_slots(frame))
            total += _combinations(frame) * (1 + len(P.OPENERS)) * (1 if dressed else 1 + contexts)
    return total
