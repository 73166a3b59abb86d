"""The vocabulary seed tasks are composed from: people, places, products, purposes, concepts, ...

Written for this project (no benchmark's prompts, no network). Each list
fills one `{slot}` of the frames in seed_tasks.py; entries are phrased to
fit every frame that uses the slot ("to {purpose}" takes a verb phrase,
"about {topic}" a noun phrase).
"""

TOPIC = [
    "urban gardening", "the history of the bicycle", "learning a second language as an adult", "remote work",
    "recycling at home", "the night sky", "saving money on groceries", "honeybees", "sleep and health",
    "public libraries", "volcanoes", "public transport", "chess", "kindness between strangers", "electric cars",
    "street music", "photosynthesis", "job interviews", "winter holidays", "ocean tides", "smartphone habits",
    "school science fairs", "long friendships", "breakfast habits", "city parks", "board games", "rainy days",
    "moving to a new city", "the first day at a new job", "houseplants", "fermentation", "bird migration",
    "online privacy", "community theatre", "running a marathon", "handwritten letters", "food waste",
    "the invention of the printing press", "tiny houses", "night trains", "learning to swim", "composting",
    "retirement", "the four-day work week", "mushroom foraging", "solar panels", "bread baking", "coral reefs",
    "video game design", "local elections", "homework", "the smell of old books", "jazz", "autumn",
    "lighthouses", "family dinners", "second-hand clothes", "mountain hiking", "noise in cities",
    "the moon landing", "time management", "pets in apartments", "water scarcity", "museums", "first cars",
    "grandparents' stories", "sign language", "street food", "the color blue", "silence",
]

AUDIENCE = [
    "a class of ten-year-olds", "my grandmother", "new employees", "a skeptical investor", "first-year university "
    "students", "busy parents", "retired engineers", "a group of tourists", "teenagers", "small-business owners",
    "nurses on a night shift", "people who have never cooked", "a book club", "volunteers at a food bank",
    "a neighborhood association", "software developers", "beginners", "high-school teachers", "my roommate",
    "a local radio audience", "amateur gardeners", "people moving abroad", "a youth football team",
    "shop customers", "readers of a travel magazine", "hospital visitors", "museum members", "city commuters",
]

RECIPIENT = [
    "my landlord", "my manager", "a former teacher", "the head of the parents' association", "a new client",
    "my neighbor", "the hotel front desk", "a job recruiter", "my team", "the school principal",
    "an old college friend", "the city council", "a supplier", "my sister", "the customer support team",
    "a conference organizer", "my book club", "a local newspaper editor", "the building manager",
    "a potential mentor", "my coworkers", "the swim coach", "a wedding photographer", "the IT department",
]

PURPOSE = [
    "ask for a two-week extension on a report", "explain why a delivery will be late", "invite them to a picnic",
    "request a refund for a broken kettle", "propose a new meeting time", "thank them for their help last week",
    "ask about volunteering opportunities", "report a leak in the kitchen ceiling", "follow up after an interview",
    "suggest a team lunch", "cancel a subscription politely", "introduce a new colleague", "ask for a reference",
    "share the results of a survey", "apologize for missing a call", "announce a change in office hours",
    "ask for feedback on a draft", "negotiate a lower price", "confirm a booking for Saturday",
    "explain a billing mistake", "ask to borrow a projector", "remind them about an unpaid invoice",
    "welcome them to the team", "request a day off", "decline an invitation kindly",
    "share an idea for saving energy at the office", "ask for help moving a sofa", "report a lost badge",
]

SITUATION = [
    "the heating in my flat has been broken for a week", "our project deadline moved up by ten days",
    "I accidentally deleted a shared file", "a customer received the wrong order twice",
    "my flight was cancelled and I will miss the first day of a workshop", "the office printer keeps jamming",
    "our neighbor's tree is leaning over our fence", "I was double-charged for a concert ticket",
    "the team has been working late every night", "a new colleague seems lonely at lunch",
    "my child's school trip costs more than we can afford", "our club needs two more volunteers by Friday",
    "the rent is going up by fifteen percent", "I found a wallet on the bus", "the café I run is losing customers",
    "my upstairs neighbor practices the drums at midnight", "a friend keeps borrowing money and forgetting it",
    "our team lost its biggest client last month", "my parents want to move in with us for the winter",
    "I have two job offers and one week to decide", "the school bus skips our street twice a week",
    "my online order arrived soaked by the rain", "a coworker takes credit for my ideas in meetings",
    "our garden is overrun by snails", "I promised to give a speech and now I am terrified",
]

PRODUCT = [
    "a solar-powered phone charger", "a reusable coffee cup", "noise-cancelling headphones", "a folding bicycle",
    "a smart plant pot that waters itself", "a board game about trade routes", "a waterproof hiking jacket",
    "a language-learning app", "a handmade ceramic teapot", "a standing desk", "an electric kettle with a timer",
    "a children's science kit", "a weighted blanket", "a budget laptop", "a pocket-sized projector",
    "organic dog treats", "a meal-planning notebook", "a bamboo toothbrush", "a portable espresso maker",
    "a running watch", "a wooden puzzle box", "a rain-proof backpack", "an air purifier", "a camping stove",
    "a subscription box of local cheeses", "an e-reader with a warm light", "a sleep-tracking ring",
    "a set of kitchen knives", "a refillable fountain pen", "a kids' balance bike", "a robot vacuum cleaner",
]

BRAND = [
    "Brightwater Cycles", "Maple & Stone", "Nimbus Audio", "Little Fern Labs", "Harbor Tea Co.",
    "Northwind Outdoor", "Pebble Kitchen", "Quillfield Stationery", "Sunny Side Bakery", "Orbit Toys",
    "Greenhouse Goods", "Tidewater Books", "Cobalt Fitness", "Hearth Home", "Fieldnote Coffee",
]

SERVICE = [
    "a community bike-repair workshop", "a dog-walking service", "a neighborhood tool library",
    "an evening language school", "a mobile library van", "a weekend farmers' market", "a coworking space",
    "a youth coding club", "a home-cleaning company", "a city bike-sharing scheme", "a tutoring center",
    "a repair café", "an online pottery course", "a food delivery cooperative", "a climbing gym",
    "a ride-sharing app for rural villages", "a pet-sitting app", "a small dental practice",
]

PLACE = [
    "Lisbon", "a fishing town on the coast", "Kyoto", "a mountain village", "Edinburgh", "a desert oasis",
    "Montreal", "a small island", "Vienna", "a farm in the countryside", "Buenos Aires", "a busy harbor",
    "Oslo", "a university campus", "Marrakesh", "a ski resort", "Cape Town", "an old mining town",
    "Hanoi", "a lakeside cabin", "Copenhagen", "a space station", "Istanbul", "a national park",
]

OCCASION = [
    "a retirement party", "a small wedding", "the opening of a community garden", "a tenth birthday",
    "a farewell dinner for a colleague", "a graduation", "a housewarming", "a family reunion",
    "a charity bake sale", "a company's twentieth anniversary", "the first day of a new school year",
    "a neighborhood street party", "a book launch", "an office holiday party", "a fiftieth wedding anniversary",
    "a team's end-of-season dinner", "a baby shower", "a museum's reopening", "a science fair prize-giving",
]

CHARACTER = [
    "a lighthouse keeper", "a retired astronaut", "a shy baker", "a robot learning to paint", "a friendly dragon",
    "a street musician", "a night-shift nurse", "a girl who collects maps", "an old fisherman", "a lost tourist",
    "a detective who is afraid of the dark", "a talking cat", "a young inventor", "a mail carrier",
    "a grandmother who runs marathons", "a school janitor", "a beekeeper", "a time traveler",
    "a new kid at school", "a chess champion", "a tired taxi driver", "a librarian", "a stray dog",
    "a violin maker", "a gardener on the moon", "two rival chefs", "a ghost who is bad at haunting",
]

SETTING = [
    "a snowed-in mountain hut", "a night train across Europe", "a crowded market", "an empty school",
    "a city during a power cut", "a houseboat", "a rainy seaside town", "a library after closing time",
    "a space colony", "a village with no roads", "a hospital waiting room", "the last bus of the night",
    "a bakery at four in the morning", "an island with one phone", "a museum of forgotten things",
    "a desert research station", "a rooftop garden", "a ferry in thick fog",
]

EVENT = [
    "finds a key that opens nothing", "has to make a difficult choice", "receives a letter from the future",
    "loses their voice on an important day", "meets someone who looks exactly like them",
    "must keep a secret for a week", "wins a prize they did not enter for", "gets stuck in an elevator",
    "discovers a door that was not there yesterday", "tries to cook for fifty guests",
    "teaches a neighbor to read", "finds out their best friend is moving away",
]

DISH = [
    "a vegetable curry", "banana bread", "lentil soup", "a summer salad", "homemade pizza", "pancakes",
    "a mushroom risotto", "chocolate chip cookies", "a tomato pasta sauce", "vegetable fried rice",
    "apple crumble", "chicken noodle soup", "hummus", "a spinach omelette", "a lemon cake", "chili",
    "overnight oats", "roast vegetables", "a bean burrito", "fish tacos", "a berry smoothie",
    "potato gratin", "a simple flatbread", "miso soup", "a rice pudding",
]

RECIPE_CONDITION = [
    "uses only one pot", "a beginner can follow", "takes under thirty minutes", "has no dairy in it",
    "works for a camping trip", "uses leftovers", "a child could help with", "feeds six people",
    "can be made the day before", "costs very little",
]

REVIEW_ITEM = [
    "a neighborhood pizza place", "a jazz album recorded in one take", "a documentary about deep-sea life",
    "a new science-fiction novel", "a budget hotel near the station", "a museum's dinosaur exhibit",
    "a city walking tour", "a fitness app", "a local theatre's production of a comedy", "a vegan cookbook",
    "an indie video game", "a train journey along the coast", "a children's animated film",
    "a secondhand bookshop", "a weekend yoga retreat", "a podcast about history", "a coffee shop's new menu",
    "a pair of running shoes", "a language course", "a family board game", "a late-night bus service",
    "a budget airline flight", "a rooftop cinema", "a new ramen bar", "a biography of a famous chemist",
    "a cordless drill", "a meditation app", "a children's picture book about the sea", "a public swimming pool",
    "a folk music festival",
]

GOAL = [
    "run five kilometers without stopping", "learn basic Spanish", "save for a bicycle", "read more books",
    "cook dinner at home most nights", "sleep better", "start a vegetable garden", "get fit without a gym",
    "spend less time on my phone", "learn to play the guitar", "organize a cluttered garage",
    "prepare for a job interview", "write a short novel", "make friends in a new city",
    "reduce my household waste", "train a puppy", "learn to code", "pay off a small debt",
    "prepare for a long hike", "study for a history exam",
]

TIMEFRAME = ["one week", "two weeks", "a month", "three months", "six weeks", "a weekend", "ten days"]

CONCEPT = [
    "how compound interest works", "why the sky is blue", "how vaccines train the immune system",
    "what inflation is", "how a bill becomes law", "why leaves change color in autumn",
    "how airplanes stay in the air", "what a black hole is", "how the internet sends data",
    "why we have seasons", "how bread rises", "what DNA does", "how a refrigerator keeps things cold",
    "why the moon has phases", "how credit scores work", "what a carbon footprint is",
    "how bees make honey", "how recycling plants sort materials", "what supply and demand means",
    "how earthquakes happen", "why exercise improves mood", "how a search engine ranks pages",
    "what an algorithm is", "how rainbows form", "why salt melts ice", "how elections are counted",
    "how the heart pumps blood", "what a budget deficit is", "how noise-cancelling headphones work",
    "why some materials conduct electricity",
]

COMPARISON = [
    "renting and buying a home", "e-books and paper books", "cycling and driving to work",
    "learning alone and learning in a class", "a gas stove and an induction stove", "cats and dogs as pets",
    "city life and country life", "working from home and working in an office", "trains and planes for "
    "short trips", "saving and investing", "tea and coffee", "a laptop and a tablet for students",
    "public and private schools", "running and swimming for fitness",
]

PEOPLE_PAIR = [
    "a nervous patient and a dentist", "two astronauts", "a customer and a shopkeeper",
    "a grandfather and his granddaughter", "two rival chefs", "a detective and a witness",
    "a teacher and a student who missed class", "two neighbors", "a tourist and a local", "a coach and a player",
    "a robot and a child", "two old friends meeting after twenty years", "a landlord and a tenant",
    "a job candidate and an interviewer",
]

MOTION = [
    "homework should be banned in primary schools", "cities should ban cars from their centers",
    "public transport should be free", "every student should learn to cook", "school should start later",
    "museums should be free to enter", "remote work is here to stay", "voting should be compulsory",
    "plastic bags should be banned", "children should learn a musical instrument",
    "the work week should be four days", "tourism does more good than harm",
]

ANNOUNCEMENT = [
    "our bakery is opening a second shop", "the library will stay open until ten", "a new bike lane opens next "
    "month", "the office is moving to a new building", "our choir is looking for new singers",
    "the summer fair has a new date", "our app now works offline", "the swimming pool is closed for repairs",
    "we are hiring two new designers", "the school play is sold out",
]

JOB = [
    "a part-time barista", "a junior data analyst", "a delivery driver", "a museum guide", "a gardener",
    "a customer support agent", "a primary school teacher", "a bicycle mechanic", "a social media assistant",
    "a night receptionist", "a lab technician", "a carpenter",
]

THING = [
    "a shadow", "an echo", "a key", "time", "a candle", "a map", "a mirror", "the wind", "a cloud", "a clock",
    "an umbrella", "a bridge", "a library card", "a footprint", "a keyboard", "a snowflake", "a secret",
    "an egg", "a river", "a candle flame", "a promise", "a piano", "a staircase", "a towel", "silence",
]

AD_FORMAT = ["a radio spot", "a poster", "a short video script", "a newspaper ad", "an email newsletter",
             "a shop window sign", "a podcast sponsor message"]

TRIP = ["a week of hiking", "a business trip to a cold city", "a beach holiday with kids", "a music festival",
        "a month of backpacking", "a winter camping night", "a long train journey"]

# Said before a request, or after it, by people asking for help; any request can take them.
OPENERS = ["Hi, quick favor. ", "Could you help me with something? ", "I need a hand. ", "Quick request: ",
           "Hello. ", "I'm stuck on this one. ", "For a project I'm working on: ", "Please help. ",
           "Got a minute? ", "Here is my request. "]
CONTEXTS = ["It is for {audience}.", "The people reading it will be {audience}.",
            "I'm going to share it with {audience}.", "Keep in mind the readers are {audience}.",
            "This is for a newsletter read by {audience}.", "The audience: {audience}.",
            "Thanks in advance.", "I'd really appreciate it."]

SOFT = {
    "style": ["Use a formal tone.", "Write in a casual, chatty tone.", "Make it humorous.",
              "Use simple words a child would know.", "Write in the style of a sports commentator.",
              "Sound like a pirate.", "Keep the tone calm and reassuring.", "Keep the register professional but warm.",
              "Write it the way an enthusiastic tour guide would talk.", "Make it sound old-fashioned."],
    "sentiment": ["Keep the overall sentiment positive.", "Give it a melancholic mood.", "Make the tone hopeful.",
                  "Stay strictly neutral, without opinions.", "Let it sound gently optimistic.",
                  "Give it a wistful, nostalgic feeling."],
    "situation": ["Imagine you are a tour guide speaking to visitors.",
                  "Write as if addressing a group of nervous first-time students.",
                  "Pretend you are writing from the year 2100.",
                  "Assume the reader is a busy executive with one minute to spare.",
                  "Write as though the reader has just arrived from another planet.",
                  "Imagine this will be read aloud at the start of a meeting."],
    "genre": ["Frame it as a fairy tale.", "Present it as a news bulletin.",
              "Shape it like a recipe, with ingredients and steps.", "Write it as a diary entry.",
              "Present it as a field guide entry."],
}
SOFT_TAXONOMY = {"style": "General/language style", "sentiment": "General/sentiment", "situation": "General/situation",
                 "genre": "Content/genre"}
