"""How synthesized instructions word each constraint: several phrasings per kind, written for this project.

    text = phrase("punctuation:no_comma", {}, rng)   # e.g. "Leave out commas entirely."

Training data must not parrot a benchmark's sentences (IFEval's constraint
texts are what `describe()` returns for its 25 kinds, kept there because
scoring and tests quote them). So the synthesis words every kind in its own
way, in several registers: terse, polite, a clause inside a longer
sentence, a "label: value" requirement line, a question. Only the wording
changes; the kwargs, and so the check, are the kind's own.

A phrasing is a `str.format` template over the kind's kwargs plus derived
fields (see `fields`): `{amount}` says a count with its relation ("fewer
than 50 words", "50 words or more"), `{X_w}` is the number X in words
where it is small, `{X_s}` is "s" unless X (or the length of list X) is
1, list kwargs come joined ("a, b and c"; `{X_or}`, `{X_q}` quoted),
`{lang}` names a language, `{nth}` is an ordinal and `{LETTER}` an
upper-case letter.
"""

from __future__ import annotations

import random
from typing import Any

from spar.constraints import get
from spar.constraints.ifeval_kinds import LANGUAGES

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty").split()
_ORDINALS = "zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split()

# kind -> (relation kwarg, count kwarg, unit singular, unit plural): what `{amount}` is made of
RELATION_FIELDS = {
    "keywords:frequency": ("relation", "frequency", "time", "times"),
    "keywords:letter_frequency": ("let_relation", "let_frequency", "time", "times"),
    "length_constraints:number_sentences": ("relation", "num_sentences", "sentence", "sentences"),
    "length_constraints:number_words": ("relation", "num_words", "word", "words"),
    "length_constraints:number_characters": ("relation", "num_characters", "character", "characters"),
    "change_case:capital_word_frequency": ("capital_relation", "capital_frequency", "word", "words"),
    "detectable_content:emoji_count": ("relation", "num_emojis", "emoji", "emojis"),
    "numeric:number_count": ("relation", "num_numbers", "number", "numbers"),
}
_FEWER = ("fewer than {n} {u}", "under {n} {u}", "less than {n} {u}", "below {n} {u}")
_AT_LEAST = ("at least {n} {u}", "{n} {u} or more", "no fewer than {n} {u}", "a minimum of {n} {u}")


def number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def ordinal(n: int) -> str:
    return _ORDINALS[n] if 0 <= n < len(_ORDINALS) else f"#{n}"


def _joined(items: list[str], last: str) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def fields(cid: str, kw: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The kwargs and the derived fields a phrasing template may use."""
    f: dict[str, Any] = dict(kw)
    for key, value in kw.items():
        if isinstance(value, int) and not isinstance(value, bool):
            f[key + "_w"] = number_word(value)
            f[key + "_s"] = "" if value == 1 else "s"  # "1 question", "2 questions"
        elif isinstance(value, list):
            f[key + "_s"] = "" if len(value) == 1 else "s"
            f[key] = _joined(value, "and")
            f[key + "_or"] = _joined(value, "or")
            f[key + "_q"] = _joined([f"'{v}'" for v in value], "and")
    if cid in RELATION_FIELDS:
        rel, count, one, many = RELATION_FIELDS[cid]
        n = kw[count]
        pattern = rng.choice(_FEWER if kw[rel] == "less than" else _AT_LEAST)
        f["amount"] = pattern.format(n=n, u=one if n == 1 else many)
    if cid == "language:response_language":
        f["lang"] = LANGUAGES.get(kw["language"], kw["language"])
    if "nth_paragraph" in kw:
        f["nth"] = ordinal(kw["nth_paragraph"])
    if "letter" in kw:
        f["LETTER"] = kw["letter"].upper()
    if "word" in kw:
        f["WORD"] = kw["word"].upper()
    return f


PHRASINGS: dict[str, list[str]] = {
    # ---- IFEval's 25 kinds, in this project's words --------------------------------------------
    "keywords:existence": [
        "Work the words {keywords} into your answer.",
        "Somewhere in the text, use {keywords_q}.",
        "Required vocabulary: {keywords}.",
        "Please make sure {keywords_q} each show up at least once.",
        "I want to see the word{keywords_s} {keywords} in what you write.",
        "Don't forget to mention {keywords}.",
        "Must mention: {keywords}.",
        "Be sure the reply uses these terms: {keywords}.",
    ],
    "keywords:frequency": [
        "Use the word '{keyword}' {amount}.",
        "The word {keyword} has to come up {amount} in your text.",
        "Word count for '{keyword}': {amount}.",
        "Please mention {keyword} {amount}, no matter where.",
        "Let the word '{keyword}' occur {amount} over the whole reply.",
        "Say '{keyword}' {amount}.",
        "Make '{keyword}' appear in the text {amount}.",
    ],
    "keywords:forbidden_words": [
        "Avoid the words {forbidden_words_or} completely.",
        "Banned words: {forbidden_words}.",
        "Please never write {forbidden_words_q}.",
        "Keep {forbidden_words_q} out of your reply.",
        "Do not say {forbidden_words_or} anywhere.",
        "The words {forbidden_words} are off limits.",
        "You may not use the word{forbidden_words_s} {forbidden_words}.",
    ],
    "keywords:letter_frequency": [
        "Use the letter '{letter}' {amount} in total.",
        "Letter count for '{letter}': {amount}.",
        "Count your letters: '{letter}' must turn up {amount}.",
        "Please write it so the letter {letter} occurs {amount} overall.",
        "Across the whole reply, the character '{letter}' should be used {amount}.",
        "Mind the letter {letter}: {amount}, counting every word.",
        "Let '{letter}' show up {amount} in the text.",
    ],
    "language:response_language": [
        "Write it in {lang}.",
        "Reply only in {lang}.",
        "Language: {lang}, with no English mixed in.",
        "Please answer in {lang} from start to finish.",
        "Use {lang} for every word of the reply.",
        "I need this in {lang}, not English.",
        "Your reader only speaks {lang}, so write everything in {lang}.",
    ],
    "length_constraints:number_sentences": [
        "Keep it to {amount}.",
        "Write {amount}.",
        "Length: {amount}.",
        "Please use {amount} in your reply.",
        "The answer should run to {amount}.",
        "Aim for {amount} overall.",
        "Sentence budget: {amount}.",
    ],
    "length_constraints:number_paragraphs": [
        "Write {num_paragraphs} paragraphs, and put a line with *** between one paragraph and the next.",
        "Use exactly {num_paragraphs_w} paragraphs separated by the divider ***.",
        "Structure: {num_paragraphs} paragraphs, split with *** lines.",
        "Please split the text into {num_paragraphs_w} paragraphs; mark each break with ***.",
        "I'd like {num_paragraphs} paragraphs in total, with *** placed between neighbouring ones.",
        "Break it into {num_paragraphs} paragraphs and separate them using three asterisks (***).",
        "Paragraphs: exactly {num_paragraphs}, divided by ***.",
    ],
    "length_constraints:number_words": [
        "Keep it to {amount}.",
        "Length: {amount}.",
        "Use {amount}.",
        "Please write {amount} in total.",
        "The whole reply should be {amount} long.",
        "Word limit: {amount}.",
        "Aim for {amount}, counting everything.",
        "Make the answer {amount}.",
    ],
    "length_constraints:nth_paragraph_first_word": [
        "Write {num_paragraphs} paragraphs separated by blank lines, and begin the {nth} one with the word "
        "'{first_word}'.",
        "Use exactly {num_paragraphs_w} paragraphs (a blank line between each), where paragraph {nth_paragraph} "
        "opens with '{first_word}'.",
        "Layout: {num_paragraphs} paragraphs split by empty lines; the first word of paragraph {nth_paragraph} "
        "is '{first_word}'.",
        "Please give {num_paragraphs} paragraphs with an empty line between them, and start the {nth} paragraph "
        "with {first_word}.",
        "{num_paragraphs} paragraphs only, each separated by one blank line. Paragraph number {nth_paragraph} "
        "has to start with the word {first_word}.",
        "Separate your {num_paragraphs_w} paragraphs with blank lines and open the {nth} of them with "
        "'{first_word}'.",
    ],
    "detectable_content:number_placeholders": [
        "Leave {num_placeholders} or more blanks to fill in, written in square brackets like [name].",
        "Include at least {num_placeholders_w} bracketed placeholders, e.g. [date] or [city].",
        "Use square-bracket fields such as [company] for details I will add later; at least {num_placeholders}.",
        "Please keep it reusable: {num_placeholders} or more placeholders in [brackets].",
        "Placeholders: at least {num_placeholders}, each in square brackets like [amount].",
        "Mark spots to personalise with square brackets ([recipient], [time], ...), no fewer than "
        "{num_placeholders} of them.",
        "Put at least {num_placeholders} fill-in slots such as [your name] in the text.",
    ],
    "detectable_content:postscript": [
        "Add a postscript at the very end, starting with {postscript_marker}",
        "Close with a note that begins '{postscript_marker}'.",
        "Finish with a {postscript_marker} line.",
        "Please tack on a {postscript_marker} after the main text.",
        "After everything else, include a short afterthought introduced by \"{postscript_marker}\".",
        "End: a postscript marked {postscript_marker}",
        "Remember a {postscript_marker} at the bottom.",
    ],
    "detectable_format:number_bullet_lists": [
        "Use exactly {num_bullets} bullet points (lines starting with * or -).",
        "Give {num_bullets_w} markdown bullets, no more and no fewer.",
        "Format: a list of precisely {num_bullets} bullets, each line opening with '* '.",
        "Please present it as {num_bullets} bullet points, like:\n* first point\n* second point",
        "Bullets: exactly {num_bullets}, written as markdown list items.",
        "I'd like the key points as {num_bullets_w} bulleted lines (use * or -), and no other bullets.",
        "Put it in {num_bullets} markdown bullet points.",
    ],
    "detectable_format:constrained_response": [
        "Reply with one of these and nothing else: {options}.",
        "Your whole answer is one of three sentences: {options}.",
        "Pick exactly one: {options}.",
        "Please respond using only one of the sentences {options}.",
        "Allowed replies: {options}.",
        "Don't explain; just say {options}.",
    ],
    "detectable_format:number_highlighted_sections": [
        "Mark at least {num_highlights} key parts in italics with single asterisks, like *this*.",
        "Emphasise {num_highlights} or more phrases using markdown, e.g. *important point*.",
        "Highlights: at least {num_highlights_w}, wrapped in *asterisks*.",
        "Please put *asterisks* around at least {num_highlights} passages you want to stand out.",
        "Use markdown emphasis (*like so*) on no fewer than {num_highlights} spots.",
        "Set off {num_highlights} or more phrases with single stars on each side, as in *key idea*.",
        "Make at least {num_highlights_w} phrases stand out with markdown *emphasis*.",
    ],
    "detectable_format:multiple_sections": [
        "Split the reply into {num_sections} parts, each opening with a line '{section_spliter} 1', "
        "'{section_spliter} 2', and so on.",
        "Organise it as {num_sections_w} numbered sections headed {section_spliter} 1, {section_spliter} 2, ...",
        "Sections: {num_sections}, each labelled '{section_spliter} N' where N counts up from 1.",
        "Please divide the text into {num_sections} chunks and start each with {section_spliter} followed by "
        "its number.",
        "Use {num_sections} sections marked like this:\n{section_spliter} 1\n...\n{section_spliter} 2\n...",
        "Number the parts: write {section_spliter} 1 before the first, {section_spliter} 2 before the second, "
        "up to {section_spliter} {num_sections}.",
    ],
    "detectable_format:json_format": [
        "Reply in valid JSON only.",
        "Format: JSON. Nothing outside the JSON object.",
        "Please return everything as one JSON value (a ```json fence is fine).",
        "Give the answer as parseable JSON, with no extra prose before or after.",
        "Output JSON and only JSON.",
        "Structure the whole reply as a JSON object.",
        "I will parse your reply with a JSON parser, so send nothing but JSON.",
    ],
    "detectable_format:title": [
        "Start with a title in double angle brackets, e.g. <<A Quiet Morning>>.",
        "Give it a title written like <<Title Here>>.",
        "Title: required, wrapped as <<...>>.",
        "Please include a heading between << and >>, such as <<Notes for Tuesday>>.",
        "Put a name for the piece in double chevrons, like <<The Long Way Home>>.",
        "Add a title enclosed in << >> marks.",
        "Head the text with a title in the form <<your title>>.",
    ],
    "combination:two_responses": [
        "Give two different versions, separated by a line of six asterisks: ******",
        "Write two alternative answers and put ****** between them.",
        "Two options, please, divided by ****** and nothing else between them.",
        "Offer a pair of distinct replies with ****** as the separator.",
        "Format: version one, then ******, then version two (they must differ).",
        "Draft it twice, two different ways, and separate the drafts with six stars (******).",
    ],
    "combination:repeat_prompt": [
        "Before answering, copy out my request above exactly as written (leave this last sentence out), then "
        "give your reply.",
        "Start by restating everything above this sentence verbatim, with nothing in front of it; then answer.",
        "Echo the request above this line unchanged as the opening of your reply, then continue with the answer.",
        "Open your reply with an exact copy of my message minus this final instruction, and only then respond.",
        "Quote the task above verbatim first (not this line, and with nothing before it), then write the answer.",
        "Your reply must begin with my request reproduced exactly, excluding this sentence; the answer follows it.",
    ],
    "startend:end_checker": [
        "End with the exact words: {end_phrase}",
        "Your last line must be \"{end_phrase}\" with nothing after it.",
        "Close on this phrase, verbatim: {end_phrase}",
        "Please sign off with \"{end_phrase}\" and stop there.",
        "Final words: {end_phrase}",
        "Make \"{end_phrase}\" the very end of the text.",
        "Wrap up with the phrase {end_phrase} (nothing may follow it).",
    ],
    "startend:quotation": [
        "Put the whole reply inside double quotes.",
        "Wrap everything you write in a pair of \" marks.",
        "The entire answer goes between double quotation marks.",
        "Please begin and end the text with a double quote (\").",
        "Format: one quoted block, \"like this\".",
        "Enclose the full answer in \"double quotes\".",
        "Quote marks around all of it, please.",
    ],
    "change_case:capital_word_frequency": [
        "Write {amount} entirely in capitals (like THIS).",
        "Use ALL-CAPS words {amount_times}.",
        "All-caps words: {amount}.",
        "Please put {amount} in full capital letters.",
        "Shout a little: {amount} fully uppercase.",
        "Include {amount} written in block capitals.",
    ],
    "change_case:english_capital": [
        "WRITE IN ENGLISH, ALL CAPITALS.",
        "Use English and uppercase letters only.",
        "Please type the whole reply in English, every letter a capital.",
        "Case: all upper. Language: English.",
        "Every letter should be uppercase, and the language English.",
        "Answer in English with caps lock on from start to finish.",
    ],
    "change_case:english_lowercase": [
        "write in english, all lowercase.",
        "Use English and lowercase letters only.",
        "Please reply in English without a single capital letter.",
        "Case: all lower. Language: English.",
        "Keep every letter lowercase, and the language English.",
        "no capitals anywhere, please; english only.",
    ],
    "punctuation:no_comma": [
        "No commas.",
        "Leave out commas entirely.",
        "Please write without using a single comma.",
        "Commas: none allowed.",
        "Avoid commas from start to finish.",
        "Punctuate with anything but commas.",
        "Could you do it with zero commas?",
    ],
    # ---- extra.py --------------------------------------------------------------------------------
    "length_constraints:words_per_sentence": [
        "No sentence longer than {max_words} words.",
        "Keep sentences short: {max_words} words at most each.",
        "Please cap each sentence at {max_words_w} words.",
        "Sentence length: {max_words} words or fewer.",
        "Every sentence should fit within {max_words} words.",
        "Write in short sentences, none over {max_words} words.",
    ],
    "length_constraints:number_characters": [
        "Keep it to {amount}.",
        "Length: {amount}, counting spaces.",
        "Please make the reply {amount} long.",
        "Character budget: {amount}.",
        "The text should be {amount} in total.",
        "Use {amount} overall.",
    ],
    "startend:first_word": [
        "Begin with the word '{first_word}'.",
        "Open your reply with \"{first_word}\".",
        "First word: {first_word}.",
        "Please make {first_word} the first word you write.",
        "The reply has to start with '{first_word}'.",
        "Kick off with the word {first_word}.",
    ],
    "startend:last_word": [
        "End on the word '{last_word}'.",
        "Finish with \"{last_word}\" as the final word.",
        "Last word: {last_word}.",
        "Please make {last_word} the very last word.",
        "The reply has to close with the word '{last_word}'.",
        "Let your final word be {last_word}.",
    ],
    "detectable_content:emoji_count": [
        "Use {amount}.",
        "Emojis: {amount}.",
        "Please include {amount} in the text.",
        "Sprinkle in {amount}.",
        "Add {amount} where they fit.",
        "Count your emojis: {amount}.",
    ],
    "detectable_content:hashtags": [
        "Add at least {num_hashtags} hashtags such as #weekend.",
        "Hashtags: {num_hashtags} or more.",
        "Please finish with {num_hashtags_w} or more hashtags.",
        "Include no fewer than {num_hashtags} hashtags (#like #these).",
        "Tag it with at least {num_hashtags} hashtags.",
        "Work in {num_hashtags} or more #hashtags.",
    ],
    "keywords:palindrome": [
        "Include a palindrome of at least {min_length} letters, like 'level'.",
        "Use one word of {min_length}+ letters that reads the same backwards.",
        "Palindrome: at least one word, {min_length} letters or longer.",
        "Please slip in a word that is spelled the same in reverse, {min_length_w} letters or more.",
        "Somewhere, use a palindromic word (such as 'civic') with at least {min_length} letters.",
        "Hide a palindrome word of {min_length} or more letters in the text.",
    ],
    "keywords:repeat_phrase": [
        "Use the phrase \"{phrase}\" exactly {times} time{times_s}.",
        "Say \"{phrase}\" {times_w} time{times_s}, no more, no fewer.",
        "The phrase '{phrase}' must appear exactly {times} time{times_s}.",
        "Please include \"{phrase}\" precisely {times_w} time{times_s}.",
        "Phrase count: '{phrase}' exactly {times}x.",
        "Work the words \"{phrase}\" in exactly {times} time{times_s}.",
    ],
    "keywords:stop_word_ratio": [
        "Keep small function words (the, of, and, to, ...) to {max_percent}% of the words or less.",
        "Write densely: at most {max_percent}% of your words may be filler words like 'the' or 'and'.",
        "Function words such as a, the, of: no more than {max_percent}% of the total.",
        "Please go easy on little words like 'the', 'is' and 'to'; they may be at most {max_percent}% of the text.",
        "Stop-word share: {max_percent}% maximum.",
        "Write tersely, so that words like 'the' and 'of' make up no more than {max_percent}% of all words.",
    ],
    "keywords:word_count_with_letter": [
        "Use at least {num_words} words beginning with '{letter}'.",
        "Include {num_words_w} or more words that start with the letter {letter}.",
        "Words starting with '{letter}': at least {num_words}.",
        "Please work in no fewer than {num_words} words whose first letter is {letter}.",
        "Alliterate a little: {num_words} or more words should begin with {letter}.",
        "Have at least {num_words} words open with the letter '{letter}'.",
    ],
    "detectable_format:json_keys": [
        "Reply with a JSON object containing the keys {keys_q}.",
        "Format: a JSON object with fields {keys}.",
        "Please answer as JSON, and include the keys {keys_q}.",
        "Output one JSON object; it must have {keys_q} as keys.",
        "Give a JSON object that has at least these keys: {keys}.",
        "Use JSON only, with {keys_q} among the top-level keys.",
    ],
    "detectable_format:numbered_list": [
        "Give a numbered list of exactly {num_items} items.",
        "Format: {num_items} numbered points (1., 2., ...).",
        "Please list {num_items_w} items, numbered, and no more.",
        "Number your points 1 to {num_items}, one per line.",
        "Exactly {num_items} numbered entries, like '1. ...'.",
        "Lay it out as a numbered list with {num_items} lines.",
    ],
    "detectable_format:markdown_headers": [
        "Use at least {num_headers} markdown headings (lines beginning with #).",
        "Headings: {num_headers} or more, markdown style (#, ##).",
        "Please organise the text under {num_headers_w} or more # headings.",
        "Break it up with no fewer than {num_headers} markdown headers.",
        "Give it structure: at least {num_headers} lines that start with '# ' or '## '.",
        "Add {num_headers} or more section headers in markdown.",
    ],
    "punctuation:no_exclamation": [
        "No exclamation marks.",
        "Please don't use a single '!'.",
        "Exclamation points: none.",
        "Keep it calm on the page: not one exclamation mark.",
        "Avoid the ! character completely.",
        "Write it without any exclamation points.",
    ],
    "punctuation:question_marks": [
        "Ask at least {num_questions} question{num_questions_s}.",
        "Include {num_questions_w} or more questions ending in '?'.",
        "Question marks: at least {num_questions}.",
        "Please pose no fewer than {num_questions} question{num_questions_s} to the reader.",
        "Put in at least {num_questions} question{num_questions_s}, each with a question mark.",
        "Use the ? mark at least {num_questions} time{num_questions_s}.",
    ],
    "numeric:no_digits": [
        "No digits; spell numbers out.",
        "Write every number in words (seven, not 7).",
        "Digits: none allowed.",
        "Please avoid the characters 0 to 9 entirely.",
        "Spell out any figures instead of using numerals.",
        "Not a single numeral, please; use words for numbers.",
    ],
    "numeric:number_count": [
        "Use {amount} written in digits.",
        "Numerals: {amount}.",
        "Please include {amount} as figures (like 12 or 3.5).",
        "Mention {amount}, written with digits.",
        "Give {amount} in numeric form.",
        "Figures in the text: {amount}.",
    ],
    "numeric:percentages": [
        "Include at least {num_percentages} percentage{num_percentages_s}, such as 40%.",
        "Use {num_percentages_w} or more figures with a % sign.",
        "Percentages: at least {num_percentages}.",
        "Please back it up with no fewer than {num_percentages} percentage{num_percentages_s} written like 12%.",
        "Quote at least {num_percentages} share{num_percentages_s} as percentages (digits plus %).",
        "Give {num_percentages} or more numbers followed by %.",
    ],
    "change_case:title_case": [
        "Capitalise the first letter of every single word.",
        "Write Every Word With A Capital Letter, Like This.",
        "Case: each word starts with an uppercase letter.",
        "Please begin all words, even small ones, with a capital.",
        "Every word needs an initial capital letter.",
        "Use title case for everything, including words like 'and' and 'of'.",
    ],
    # ---- structure.py ------------------------------------------------------------------------------
    "length:words_per_paragraph": [
        "Each paragraph: {min_words} to {max_words} words.",
        "Keep every paragraph between {min_words} and {max_words} words.",
        "Please make each paragraph at least {min_words} and at most {max_words} words long.",
        "Paragraph length: {min_words}-{max_words} words apiece.",
        "No paragraph shorter than {min_words} words or longer than {max_words}.",
        "Write paragraphs of {min_words} to {max_words} words each.",
    ],
    "length:sentences_per_paragraph": [
        "At most {max_sentences} sentences per paragraph.",
        "Keep paragraphs short: {max_sentences_w} sentences or fewer each.",
        "Please don't put more than {max_sentences} sentences in any paragraph.",
        "Paragraph size: up to {max_sentences} sentences.",
        "Each paragraph may hold {max_sentences} sentences at most.",
        "Limit every paragraph to {max_sentences_w} sentences.",
    ],
    "length:exact_lines": [
        "Exactly {num_lines} lines.",
        "Use precisely {num_lines_w} non-blank lines.",
        "Please make the reply {num_lines} lines long, not counting empty ones.",
        "Line count: {num_lines}.",
        "The text should fill exactly {num_lines} lines.",
        "Write {num_lines} lines of text, no more and no fewer.",
    ],
    "structure:alphabetical_list": [
        "Include a list of {min_items}+ items in alphabetical order.",
        "List at least {min_items} items, sorted A to Z.",
        "Please give a bulleted or numbered list of {min_items_w} or more entries in alphabetical order.",
        "List: {min_items} items minimum, alphabetised.",
        "Order your list alphabetically and give it at least {min_items} entries.",
        "Add an A-to-Z sorted list with no fewer than {min_items} items.",
    ],
    "structure:countdown_list": [
        "Format it as a countdown from {start} to 1 (a numbered list).",
        "Number the items backwards: {start}, {start_minus_one}, ... down to 1.",
        "Countdown style: a numbered list that starts at {start} and ends at 1.",
        "Please present a reverse-numbered list from {start_w} down to one.",
        "List the points as {start}. ... 1., counting down.",
        "Make it a top-{start} countdown, numbered {start} to 1.",
    ],
    "structure:numbered_steps": [
        "Write exactly {num_steps} steps, each line starting 'Step 1:', 'Step 2:' and so on.",
        "Steps: {num_steps}, labelled Step 1: to Step {num_steps}:.",
        "Please lay it out as {num_steps_w} lines that begin 'Step N:' (N from 1 to {num_steps}).",
        "Give {num_steps} steps, each on its own line as 'Step 1: ...', 'Step 2: ...'.",
        "Break it into {num_steps} labelled steps (Step 1:, Step 2:, ...), no more.",
        "Use the format Step 1:, Step 2:, ... up to Step {num_steps}:, one per line.",
    ],
    "structure:bullets_end_with_period": [
        "Use at least {min_bullets} bullet points, each ending with a full stop.",
        "Bullets: {min_bullets}+, every one closed with a period.",
        "Please write {min_bullets_w} or more bullets and end each with '.'.",
        "Give at least {min_bullets} bulleted lines; none may end without a period.",
        "Every bullet (at least {min_bullets} of them) should finish with a period.",
        "List {min_bullets} or more points with - or *, and put a period at the end of each.",
    ],
    "structure:bold_lead_in": [
        "Use {min_bullets}+ bullet points, each starting with a bold label like '- **Price:** ...'.",
        "Bullets: at least {min_bullets}, each opening with a **bold phrase**.",
        "Please begin every bullet (at least {min_bullets_w}) with a few words in bold.",
        "Write at least {min_bullets} bullets whose first words are **bolded**.",
        "Give {min_bullets} or more bullets in the style '- **Topic:** details'.",
        "Lead each of your {min_bullets}+ bullet points with a bold keyword.",
    ],
    "structure:table_shape": [
        "Include a markdown table: {columns} columns, {rows} data rows under the header.",
        "Add a table with {columns_w} columns and {rows_w} rows (not counting the header).",
        "Please put the details in a markdown table of {rows} rows by {columns} columns, plus a header row.",
        "Table: {columns} columns x {rows} rows, header and |---| separator included.",
        "Summarise it in a markdown table with {columns} columns and exactly {rows} body rows.",
        "Use a {rows}-row, {columns}-column markdown table below a header line.",
    ],
    "structure:code_block": [
        "Include a fenced code block tagged {language} (```{language}).",
        "Put some of it in a ```{language} code block.",
        "Code block: one, marked as {language}.",
        "Please add a fenced block that opens with ```{language} and closes with ```.",
        "Show part of the answer inside a {language} code fence.",
        "Use at least one triple-backtick block labelled {language}.",
    ],
    "template:qa_pairs": [
        "Format it as {num_pairs} Q:/A: pairs, one 'Q:' line then one 'A:' line.",
        "Give exactly {num_pairs_w} question-answer pairs, with lines starting Q: and A:.",
        "Please write {num_pairs} pairs: a 'Q:' line, then its 'A:' line.",
        "Q&A format: {num_pairs} pairs, alternating Q: and A: lines.",
        "Use {num_pairs} questions and answers, labelled Q: and A: at the start of each line.",
        "Lay it out as {num_pairs} exchanges, each a Q: line followed by an A: line.",
    ],
    "template:labeled_fields": [
        "Use these labels in this order, each starting a line: {labels_q}.",
        "Fill out the fields {labels} in that order, as 'Label: text'.",
        "Please structure the reply with the line labels {labels}, in that sequence, each followed by a colon.",
        "Template: {labels_q}, one per line, each followed by ':' and content.",
        "Start lines with {labels} (in that order), each label followed by a colon and filled in.",
        "Give the sections {labels} in order, each on a line beginning with the label and a colon.",
    ],
    "template:subject_line": [
        "Start with a line 'Subject: ...' of at most {max_words} words.",
        "First line: Subject: plus a summary of {max_words} words or fewer.",
        "Please open with a subject line ('Subject: ...') no longer than {max_words_w} words.",
        "Begin with 'Subject:' and a short subject of up to {max_words} words.",
        "Put a subject line first, formatted 'Subject: ...', at most {max_words} words.",
        "The very first line must be a 'Subject:' line, {max_words} words max.",
    ],
    # ---- lexical.py ----------------------------------------------------------------------------------
    "length:max_word_length": [
        "No word longer than {max_letters} letters.",
        "Use only words of {max_letters} letters or fewer.",
        "Please keep every word to {max_letters_w} letters at most.",
        "Word length: {max_letters} letters maximum.",
        "Stick to plain words; none may exceed {max_letters} letters.",
        "Avoid any word with more than {max_letters} letters.",
    ],
    "lexical:no_repeated_word": [
        "Don't repeat any word of {min_letters}+ letters.",
        "Words with {min_letters} or more letters may be used only once each.",
        "Please never reuse a word that has {min_letters_w} letters or more.",
        "No repeats among words of {min_letters} letters or longer.",
        "Every word of length {min_letters}+ should appear at most once.",
        "Vary your vocabulary: a word of {min_letters} or more letters can occur only once.",
    ],
    "lexical:keyword_every_paragraph": [
        "Use the word '{keyword}' in every paragraph.",
        "Each paragraph must mention {keyword}.",
        "Please make sure '{keyword}' turns up in each paragraph.",
        "Keyword per paragraph: {keyword}.",
        "Every single paragraph should contain the word {keyword}.",
        "Work '{keyword}' into all of your paragraphs.",
    ],
    "lexical:keyword_in_first_sentence": [
        "Use '{keyword}' in the first sentence.",
        "Your opening sentence must contain the word {keyword}.",
        "Please mention {keyword} right in the first sentence.",
        "First sentence: include '{keyword}'.",
        "Get the word '{keyword}' into the very first sentence.",
        "The word {keyword} has to appear in sentence one.",
    ],
    "length:short_opening": [
        "Open with a short sentence of {max_words} words or fewer.",
        "First sentence: at most {max_words} words.",
        "Please keep the opening sentence to {max_words_w} words or less.",
        "Start punchy: no more than {max_words} words in sentence one.",
        "The first sentence may have {max_words} words at most.",
        "Begin with a brief sentence (up to {max_words} words).",
    ],
    "sentence:start_letter": [
        "Start every sentence with a word beginning with '{LETTER}'.",
        "Each sentence opens with a word that starts with {LETTER}.",
        "Please begin all sentences with the letter {LETTER}.",
        "Sentence openings: always the letter {LETTER}.",
        "Every sentence's first word must start with {LETTER}.",
        "Make each sentence begin with a word whose first letter is {LETTER}.",
    ],
    "sentence:paragraph_last_word": [
        "End every paragraph with the word '{word}'.",
        "Each paragraph's final word: {word}.",
        "Please close all paragraphs on the word {word}.",
        "The last word of each paragraph must be '{word}'.",
        "Finish every paragraph with \"{word}\".",
        "Let each paragraph end in the word {word}.",
    ],
    "sentence:ends_with_question": [
        "End with a question.",
        "Close by asking the reader something (last sentence ends in '?').",
        "Please make your final sentence a question.",
        "Last sentence: a question, with a question mark.",
        "Finish on a question to the reader.",
        "The reply should end in a question mark.",
    ],
    "sentence:acrostic": [
        "Write exactly {word_len} lines whose first letters spell {WORD}.",
        "Make it an acrostic of {WORD}: {word_len} lines, nothing else.",
        "Please use {word_len_w} lines only, their initial letters spelling {WORD}.",
        "Acrostic: the first letters of your {word_len} lines read {WORD}.",
        "Only {word_len} lines, and reading down their first letters gives {WORD}.",
        "Spell {WORD} down the left edge: one line per letter, {word_len} lines in all.",
    ],
    "case:caps_run": [
        "Include exactly {run_length} words in a row in capitals, and never a longer run of capitalised words.",
        "Somewhere, put {run_length_w} consecutive words in ALL CAPS (no longer all-caps streak anywhere).",
        "Caps run: exactly {run_length} uppercase words together, the longest such run in the text.",
        "Please write one stretch of {run_length} capitalised words in a row; no run of caps may be longer.",
        "Have your longest streak of ALL-CAPS words be exactly {run_length} words.",
        "Use a block of {run_length} words IN CAPITALS in sequence, and no bigger block than that.",
    ],
    "case:heading_title_case": [
        "Use at least {min_headings} markdown heading{min_headings_s} in Title Case.",
        "Headings: {min_headings}+, markdown (#), capitalised Like A Title.",
        "Please add {min_headings_w} or more # headings, each written in title case.",
        "Give the text at least {min_headings} heading{min_headings_s} with every major word capitalised, "
        "e.g. '## Where We Stand'.",
        "Include no fewer than {min_headings} markdown heading{min_headings_s}; capitalise them as titles.",
        "Organise it under {min_headings}+ title-case headings (lines starting with #).",
    ],
    "charset:ascii_only": [
        "Plain ASCII only.",
        "Use only basic ASCII characters: straight quotes, no accents, no emoji.",
        "Please avoid any character outside ASCII (no curly quotes or long dashes).",
        "Charset: ASCII.",
        "Stick to characters you can type on a US keyboard without special keys.",
        "No non-ASCII symbols at all, including emoji and accented letters.",
    ],
    "punctuation:no_dashes": [
        "No dashes between words (hyphenated words are fine).",
        "Avoid em dashes, en dashes, double hyphens and spaced hyphens.",
        "Please don't use dashes to join clauses; commas or colons instead.",
        "Dashes: none, except inside hyphenated words.",
        "Write without any dash punctuation (\u2014, \u2013, --).",
        "Keep dashes out of the text; a hyphen inside a word like 'well-known' is allowed.",
    ],
    "punctuation:parentheses": [
        "Add exactly {num_parentheses} remark{num_parentheses_s} in parentheses.",
        "Use round brackets exactly {num_parentheses} time{num_parentheses_s} (like this).",
        "Please include {num_parentheses_w} parenthetical aside{num_parentheses_s}, no more.",
        "Parenthetical remarks: exactly {num_parentheses}.",
        "Put precisely {num_parentheses} comment{num_parentheses_s} inside ( and ).",
        "The text should contain exactly {num_parentheses} aside{num_parentheses_s} in brackets (such as this one).",
    ],
    "numeric:date_format": [
        "Mention a date, and write every date as {date_format} (e.g. {date_example}).",
        "Dates: at least one, formatted {date_format}.",
        "Please include at least one date in the form {date_example} ({date_format}), and use that form for all dates.",
        "Give any dates as {date_format}, like {date_example}, and mention at least one.",
        "Refer to at least one date; format all dates {date_format}.",
        "Include a date written like {date_example} (format {date_format}), and no date in any other format.",
    ],
    "symbol:citations": [
        "Cite at least {num_sources} source{num_sources_s} as [1], [2], ... and end with a list of them.",
        "Use numbered citations like [1] (at least {num_sources}), then a source list at the end.",
        "Please back claims with {num_sources}+ bracketed citations and finish with lines '[1] ...', '[2] ...'.",
        "Citations: at least {num_sources}, numbered in brackets, with a reference list last.",
        "Support the text with references [1] to [{num_sources}] or more, listed at the bottom.",
        "Add at least {num_sources} numbered references in square brackets and list the sources at the end.",
    ],
}


# Orders of the three fixed answers in which no two follow each other as they do in IFEval's list (yes, no,
# maybe): then no run of eight words can span two options in the benchmark's order.
ANSWER_ORDERS = [("yes", "maybe", "no"), ("no", "yes", "maybe"), ("maybe", "no", "yes")]
ANSWER_STYLES = [("'My answer is {}.'", ", ", " or "), ('"My answer is {}."', " / ", " / "),
                 ("My answer is {}.", " | ", " | "), ("'My answer is {}.'", " or ", " or ")]


def _extra_fields(cid: str, kw: dict[str, Any], f: dict[str, Any], rng: random.Random) -> None:
    """Fields only one kind needs."""
    if cid == "detectable_format:constrained_response":
        shape, sep, last = rng.choice(ANSWER_STYLES)
        shown = [shape.format(a) for a in rng.choice(ANSWER_ORDERS)]
        f["options"] = f"{shown[0]}{sep}{shown[1]}{last}{shown[2]}"
    elif cid == "change_case:capital_word_frequency":
        f["amount_times"] = f["amount"].replace(" words", " times").replace(" word", " time")
    elif cid == "structure:countdown_list":
        f["start_minus_one"] = kw["start"] - 1
    elif cid == "sentence:acrostic":
        f["word_len"] = len(kw["word"])
        f["word_len_w"] = number_word(len(kw["word"]))
    elif cid == "numeric:date_format":
        from spar.constraints.lexical import EXAMPLES

        f["date_example"] = EXAMPLES[kw["date_format"]]


# Our own closing lines for startend:end_checker: its sample_kwargs draws IFEval's, which are 8-word sentences
# of the benchmark ("Is there anything else I can help with?").
END_PHRASES = ["Thanks for reading.", "That covers everything.", "Hope this helps you decide.",
               "Write back with any questions.", "Talk soon.", "Until next time.", "That is the whole story.",
               "Let me know what you think."]


def sample_kwargs(cid: str, rng: random.Random, prompt: str = "") -> dict[str, Any]:
    """The kind's own sample_kwargs, with our values where its values are a benchmark's words."""
    kw = get(cid).sample_kwargs(rng, prompt=prompt)
    if cid == "startend:end_checker":
        kw["end_phrase"] = rng.choice(END_PHRASES)
    return kw


def phrasings(cid: str) -> list[str]:
    """The phrasing templates of a kind; a kind without its own falls back to its describe() text."""
    return PHRASINGS.get(cid, [])


def phrase(cid: str, kwargs: dict[str, Any], rng: random.Random, choices: list[int] | None = None) -> str:
    """One phrasing of constraint `cid` with `kwargs`, drawn from `rng` (among `choices`, indices, when given)."""
    templates = phrasings(cid)
    if not templates:  # a kind added without phrasings still works, in its describe() words
        return get(cid).describe(kwargs)
    f = fields(cid, kwargs, rng)
    _extra_fields(cid, kwargs, f, rng)
    index = rng.choice(choices) if choices else rng.randrange(len(templates))
    return templates[index].format(**f)
