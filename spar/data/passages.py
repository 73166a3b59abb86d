"""Short texts made from parts, for the seed tasks that work on a given passage (summarize, rewrite, ask about).

    text = make_passage(rng)
    n = count_passages()

Each template is a few sentences with slots; every slot has its own list of
sentence pieces, written for this project, so one template yields
hundreds of distinct passages that still read as a news item, a study, a
notice, an anecdote, a bit of history or a match report.
"""

from __future__ import annotations

import math
import random
import string

TEMPLATES = [
    ("The council of {town} voted on {day} to {measure}. Supporters said the change would {benefit}, while "
     "critics worried about {worry}. The plan will be reviewed {review}."),
    ("Researchers at {institution} followed {subjects} for {duration}. They found that {finding}. The authors "
     "caution that {caveat}."),
    ("From next {weekday}, {office} will {change}. The reason is that {reason}. Anyone who {exception} should "
     "speak to {contact} before the end of the month."),
    ("Last {season}, {name} decided to {challenge}. At first {obstacle}. By the end, {result}."),
    ("{brand} is recalling {item} sold since {month} because {defect}. Customers can {remedy}. The company says "
     "{statement}."),
    ("In {history}. At the time, {context}. Today, {legacy}."),
    ("{team} beat {rival} {score} on {day}, thanks largely to {hero}. The result {consequence}, and the coach "
     "said {quote}."),
]

PARTS = {
    "town": ["Millbrook", "Eastport", "the village of Ashford", "Riverside", "Greyhaven", "Lakewood", "Northfield",
             "Stonebridge"],
    "day": ["Monday", "Tuesday", "Wednesday evening", "Thursday", "Friday morning", "Saturday"],
    "measure": ["close the main street to cars on Sundays", "build a bike lane along the river",
                "turn an empty car park into a playground", "cut streetlight hours after midnight",
                "open the town pool all year", "plant five hundred trees along the ring road",
                "double the fee for parking downtown"],
    "benefit": ["bring more shoppers to local stores", "make the streets safer for children", "cut the town's "
                "energy bill", "give young families somewhere to meet", "reduce traffic noise"],
    "worry": ["the cost to taxpayers", "longer journeys for delivery vans", "a loss of parking for older residents",
              "noise late at night", "how the work would disrupt businesses"],
    "review": ["after six months", "next spring", "at the end of the year", "once the summer is over"],
    "institution": ["a university in Denmark", "a children's hospital", "a public health agency",
                    "a marine research institute", "a sleep clinic", "a sports science lab"],
    "subjects": ["2,000 office workers", "300 families", "a colony of seabirds", "120 primary school pupils",
                 "a group of retired teachers", "800 cyclists"],
    "duration": ["two years", "one school term", "eighteen months", "a full decade", "six weeks"],
    "finding": ["short walks every hour improved focus", "those who ate breakfast together argued less",
                "a quieter classroom led to better reading scores", "daily cycling cut sick days by a third",
                "people slept longer when they kept their phones out of the bedroom",
                "the birds changed their routes after the winter storms"],
    "caveat": ["the group was small", "people reported their own habits, which can be unreliable",
               "the results may not hold in other countries", "the study did not include children under five"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "office": ["the head office", "the town library", "the customer service desk", "the science department",
               "our warehouse"],
    "change": ["open an hour later", "close at lunchtime", "go paperless", "move to the second floor",
               "require a badge at the front door", "switch to a four-day week"],
    "reason": ["the building needs new wiring", "too few visitors come early", "we want to cut printing costs",
               "staff asked for a better balance between work and home", "a security review recommended it"],
    "exception": ["has a booking already", "needs paper forms", "works the night shift", "cannot use the stairs"],
    "contact": ["the front desk", "their team leader", "the facilities manager", "Priya in human resources"],
    "season": ["spring", "summer", "autumn", "winter"],
    "name": ["Maria", "Tomasz", "Aisha", "Kenji", "Lena", "Samuel", "Farah", "Oliver"],
    "challenge": ["open a bakery with a single oven", "cycle from the coast to the mountains",
                  "learn to swim at the age of sixty", "repair old radios for neighbors",
                  "start a choir in the village hall", "grow all the vegetables for the family"],
    "obstacle": ["nothing went to plan", "friends laughed at the idea", "money ran short within weeks",
                 "a storm ruined the first attempt", "there was no time after work"],
    "result": ["the queue outside stretched around the block", "twenty people had joined in",
               "the local paper ran a story about it", "it had become a weekly habit for the whole street",
               "there was enough left over to give to the food bank"],
    "brand": ["Pebble Kitchen", "Orbit Toys", "Northwind Outdoor", "Hearth Home", "Nimbus Audio"],
    "item": ["a line of electric kettles", "a wooden toy train", "a camping lantern", "a space heater",
             "a pair of wireless earbuds"],
    "month": ["January", "March", "last May", "the start of the year", "September"],
    "defect": ["the handle can come loose", "a small part may break off", "the battery can overheat",
               "the switch may stick in the on position"],
    "remedy": ["return it to any store for a full refund", "ask for a free replacement online",
               "post it back at no cost", "bring it to a repair point for a free fix"],
    "statement": ["no injuries have been reported", "it is acting out of caution", "fewer than one in a thousand "
                  "units are affected"],
    # a year and what happened in it, together, so a passage never misdates an event
    "history": ["1816, much of Europe saw snow in summer after a volcanic eruption the year before",
                "1858, a great stink from the river forced London to build new sewers",
                "1928, a scientist noticed mould killing bacteria in a forgotten dish",
                "1955, a woman in Alabama refused to give up her bus seat",
                "1969, people around the world watched humans walk on the moon",
                "1989, a wall that had divided Berlin for decades was opened"],
    "context": ["few people understood what was happening", "newspapers paid little attention",
                "the event seemed small and local", "many thought it was a passing moment"],
    "legacy": ["it is taught in schools around the world", "historians still argue about its causes",
               "it is remembered every year with a public holiday", "its effects can be seen in everyday life"],
    "team": ["The Riverside Otters", "Eastport United", "the Millbrook girls' team", "The Lakewood Hawks"],
    "rival": ["their oldest rivals", "the league leaders", "a side from the capital", "last year's champions"],
    "score": ["2-1", "3-0", "4-3", "1-0", "78-74"],
    "hero": ["a goalkeeper playing her first match", "a late substitute", "their captain", "a seventeen-year-old "
             "striker"],
    "consequence": ["keeps them top of the table", "ends a run of five defeats", "sends them to the final",
                    "saves them from relegation"],
    "quote": ["it was the proudest day of her career", "the fans carried the team", "there is still work to do",
              "nobody gave up"],
}


def _slots(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def make_passage(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    text = template.format(**{s: rng.choice(PARTS[s]) for s in _slots(template)})
    return text[0].upper() + text[1:]


def count_passages() -> int:
    """How many distinct passages the templates can make."""
    return sum(math.prod(len(PARTS[s]) for s in set(_slots(t))) for t in TEMPLATES)
