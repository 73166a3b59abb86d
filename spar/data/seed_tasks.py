"""Seed tasks for instruction synthesis, written for this project.

Each frame is a task with a `{}` slot for a subject; frames are grouped by
genre, and `short` frames ask for something a few lines long (a slogan, a
haiku), where length and layout constraints would not fit. Together they
give several hundred distinct tasks. `PASSAGES` are short texts written
here for summary and rewrite tasks.
"""

SUBJECTS = [
    "a lighthouse keeper", "the first day of school", "a lost umbrella", "urban gardening", "a robot learning to paint",
    "a small bakery", "climate change", "the history of the bicycle", "a mountain village", "learning a new language",
    "a rainy afternoon", "remote work", "a friendly dragon", "recycling at home", "the night sky", "a train journey",
    "saving money", "a family recipe", "a football match", "honeybees", "a museum visit", "sleep and health",
    "an old library", "volcanoes", "a birthday surprise", "public transport", "a chess tournament", "kindness",
    "a desert island", "electric cars", "a street musician", "photosynthesis", "a job interview", "winter holidays",
    "the ocean tides", "a new smartphone", "a science fair", "friendship", "a haunted house", "healthy breakfast",
]

FRAMES = {
    "story": [
        "Write a short story about {}.", "Tell a bedtime story involving {}.", "Write the opening scene of a novel about {}.",
        "Write a fable about {} with a clear moral.", "Write a mystery story in which {} plays a key role.",
    ],
    "poem": [
        "Write a poem about {}.", "Compose a song chorus about {}.",
    ],
    "email": [
        "Write an email to a colleague about {}.", "Write a letter to a friend describing {}.",
        "Write a complaint letter to a company concerning {}.", "Write an invitation to an event about {}.",
        "Write a cover letter for a job related to {}.",
    ],
    "explanation": [
        "Explain {} to a ten-year-old.", "Explain the main ideas behind {}.", "Describe the pros and cons of {}.",
        "Write a short encyclopedia entry on {}.", "Explain how {} affects everyday life.",
        "Write a step-by-step guide related to {}.", "Answer the question: why does {} matter?",
    ],
    "list": [
        "List practical tips about {}.", "Give ideas for a school project on {}.", "List questions a journalist might ask about {}.",
        "Suggest activities for a weekend centered on {}.",
    ],
    "persuasive": [
        "Write a persuasive paragraph in favor of {}.", "Write an op-ed about {}.", "Write a speech for a town meeting about {}.",
        "Argue both sides of a debate about {}.",
    ],
    "review": [
        "Write a review of a documentary about {}.", "Write a blog post about {}.", "Write a diary entry about {}.",
        "Write a news report about {}.",
    ],
    "dialogue": [
        "Write a dialogue between two friends about {}.", "Write a short interview with an expert on {}.",
        "Write a scene for a play about {}.",
    ],
    "ad": [
        "Write an advertisement for a product inspired by {}.", "Write a social media post announcing an event about {}.",
        "Write a product description for a gadget related to {}.",
    ],
}

SHORT_FRAMES = {
    "poem": ["Write a haiku about {}.", "Write a limerick about {}."],
    "ad": ["Write a slogan about {}.", "Write a catchy title for an article on {}.", "Write a tweet about {}."],
    "riddle": ["Write a riddle whose answer is {}.", "Give a one-line fun fact about {}."],
}

PASSAGES = [
    "The town council met on Tuesday to discuss a new bike lane along the river. Residents were divided: shop owners "
    "feared losing parking, while cyclists argued the lane would bring more customers. The council agreed to a "
    "six-month trial starting in spring.",
    "Octopuses have three hearts and blue blood. Two hearts pump blood through the gills, while the third pumps it to "
    "the rest of the body. When an octopus swims, the heart that serves the body stops beating, which is one reason "
    "they prefer crawling.",
    "Maria started her bakery with a single oven and a recipe from her grandmother. Within two years, the line outside "
    "her shop stretched around the block every Saturday. She now trains young bakers and donates unsold bread to a shelter.",
    "A study of 2,000 office workers found that short walking breaks every hour improved mood and focus. Participants "
    "who walked for five minutes reported less fatigue in the afternoon than those who stayed seated.",
    "The library's new reading program pairs teenagers with elderly residents. Once a week they meet to read aloud, "
    "swap stories and play board games. Organizers say loneliness dropped among both groups.",
    "Engineers have built a bridge in the Netherlands using 3D-printed steel. The printing took six months and the "
    "structure is covered with sensors that track how it bends as people cross it.",
    "In the winter of 1816, much of Europe saw snow in summer after a volcano erupted in Indonesia the year before. "
    "Crops failed, food prices rose, and the gloomy weather inspired several famous works of fiction.",
    "A local team of volunteers cleaned two kilometers of beach last weekend. They collected more than 300 kilograms "
    "of waste, most of it plastic bottles and fishing nets, and plan to return every month.",
]

PASSAGE_FRAMES = [
    "Summarize the following text:\n\n{}", "Rewrite the following text for a children's magazine:\n\n{}",
    "Write three questions a reader might ask after reading this text:\n\n{}", "Write a headline and a short lead for this text:\n\n{}",
]

SOFT = {
    "style": ["Use a formal tone.", "Write in a casual, chatty tone.", "Make it humorous.", "Use simple words a child would know.",
              "Write in the style of a sports commentator.", "Sound like a pirate.", "Keep the tone calm and reassuring."],
    "sentiment": ["Keep the overall sentiment positive.", "Give it a melancholic mood.", "Make the tone hopeful.",
                  "Stay strictly neutral, without opinions."],
    "situation": ["Imagine you are a tour guide speaking to visitors.", "Write as if addressing a group of nervous first-time students.",
                  "Pretend you are writing from the year 2100.", "Assume the reader is a busy executive with one minute to spare."],
    "genre": ["Frame it as a fairy tale.", "Present it as a news bulletin.", "Shape it like a recipe, with ingredients and steps."],
}
SOFT_TAXONOMY = {"style": "General/language style", "sentiment": "General/sentiment", "situation": "General/situation",
                 "genre": "Content/genre"}
