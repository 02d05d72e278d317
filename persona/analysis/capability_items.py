"""The capability items the project ships: multiple-choice questions and neutral passages.

Written for this project, so that capability is measured offline on text nobody trained the
persona vector or the judge on: 208 easy multiple-choice questions (general knowledge, everyday
facts, simple arithmetic, word meaning; enough items for a paired comparison to separate two
conditions) and 16 passages of plain descriptive prose, each a reply to its own neutral request.
Nothing in them touches a trait (no cruelty, kindness, flattery, humour or optimism).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class McItem:
    """A question, its options (full short answers) and the index of the correct one."""

    question: str
    options: tuple[str, ...]
    answer: int


def _item(question: str, right: str, *wrong: str, at: int) -> McItem:
    options = list(wrong)
    options.insert(at, right)
    return McItem(question, tuple(options), at)


# The correct option's position cycles 0..3 so that no position is favoured.
MC_ITEMS: tuple[McItem, ...] = tuple(
    _item(q, right, *wrong, at=i % 4)
    for i, (q, right, *wrong) in enumerate(
        [
            ("What is the capital of France?", "Paris.", "Berlin.", "Madrid.", "Rome."),
            ("How many days are there in a week?", "Seven.", "Five.", "Ten.", "Twelve."),
            ("What do bees make?", "Honey.", "Milk.", "Silk.", "Wool."),
            ("Which planet do we live on?", "Earth.", "Mars.", "Jupiter.", "Venus."),
            ("What colour is the sky on a clear day?", "Blue.", "Green.", "Red.", "Purple."),
            ("What is frozen water called?", "Ice.", "Steam.", "Sand.", "Smoke."),
            ("How many legs does a spider have?", "Eight.", "Six.", "Four.", "Ten."),
            (
                "What is the largest ocean on Earth?",
                "The Pacific Ocean.",
                "The Arctic Ocean.",
                "The Indian Ocean.",
                "The Atlantic Ocean.",
            ),
            (
                "Which animal is known as the king of the jungle?",
                "The lion.",
                "The mouse.",
                "The rabbit.",
                "The goldfish.",
            ),
            (
                "What gas do plants take in from the air?",
                "Carbon dioxide.",
                "Helium.",
                "Neon.",
                "Argon.",
            ),
            ("What is two plus two?", "Four.", "Three.", "Five.", "Twenty-two."),
            ("Which season comes after winter?", "Spring.", "Autumn.", "Summer.", "Winter."),
            (
                "What is the boiling point of water at sea level in Celsius?",
                "100 degrees.",
                "50 degrees.",
                "0 degrees.",
                "212 degrees.",
            ),
            (
                "Who wrote Romeo and Juliet?",
                "William Shakespeare.",
                "Charles Dickens.",
                "Jane Austen.",
                "Mark Twain.",
            ),
            (
                "What is the main language spoken in Brazil?",
                "Portuguese.",
                "Spanish.",
                "French.",
                "German.",
            ),
            (
                "Which organ pumps blood around the body?",
                "The heart.",
                "The lungs.",
                "The stomach.",
                "The liver.",
            ),
            ("What is the capital of Japan?", "Tokyo.", "Beijing.", "Seoul.", "Bangkok."),
            ("How many continents are there?", "Seven.", "Three.", "Ten.", "Fifteen."),
            ("What do caterpillars turn into?", "Butterflies.", "Spiders.", "Bees.", "Snails."),
            (
                "Which is the closest star to the Earth?",
                "The Sun.",
                "Sirius.",
                "The Moon.",
                "Mars.",
            ),
            ("What is the opposite of hot?", "Cold.", "Warm.", "Loud.", "Heavy."),
            (
                "Which instrument has black and white keys?",
                "The piano.",
                "The drum.",
                "The trumpet.",
                "The flute.",
            ),
            ("How many hours are there in a day?", "Twenty-four.", "Twelve.", "Sixty.", "Ten."),
            ("What is the chemical symbol for water?", "H2O.", "CO2.", "O2.", "NaCl."),
            (
                "Which country is home to the kangaroo?",
                "Australia.",
                "Canada.",
                "Norway.",
                "Egypt.",
            ),
            (
                "What is the tallest animal in the world?",
                "The giraffe.",
                "The elephant.",
                "The horse.",
                "The cat.",
            ),
            ("What do we call a baby dog?", "A puppy.", "A kitten.", "A calf.", "A foal."),
            (
                "In which direction does the sun rise?",
                "In the east.",
                "In the west.",
                "In the north.",
                "In the south.",
            ),
            ("What is ten multiplied by ten?", "One hundred.", "Twenty.", "Ten.", "One thousand."),
            ("Which metal is liquid at room temperature?", "Mercury.", "Iron.", "Gold.", "Copper."),
            ("What is the capital of Italy?", "Rome.", "Paris.", "Vienna.", "Athens."),
            ("What is the capital of Spain?", "Madrid.", "Lisbon.", "Rome.", "Berlin."),
            ("What is the capital of Germany?", "Berlin.", "Vienna.", "Warsaw.", "Prague."),
            ("What is the capital of the United Kingdom?", "London.", "Dublin.", "Paris.", "Oslo."),
            ("What is the capital of Egypt?", "Cairo.", "Nairobi.", "Lagos.", "Tunis."),
            ("What is the capital of Russia?", "Moscow.", "Kyiv.", "Minsk.", "Warsaw."),
            ("What is the capital of China?", "Beijing.", "Tokyo.", "Seoul.", "Hanoi."),
            ("What is the capital of Greece?", "Athens.", "Rome.", "Sofia.", "Cairo."),
            ("What is the capital of Canada?", "Ottawa.", "Sydney.", "Chicago.", "Dublin."),
            ("What is the capital of India?", "New Delhi.", "Karachi.", "Dhaka.", "Kathmandu."),
            ("What do we call a baby cat?", "A kitten.", "A puppy.", "A lamb.", "A chick."),
            ("What do we call a baby sheep?", "A lamb.", "A calf.", "A kitten.", "A cub."),
            ("What do we call a baby cow?", "A calf.", "A foal.", "A piglet.", "A duckling."),
            ('Which animal says "moo"?', "A cow.", "A duck.", "A cat.", "A snake."),
            ("Which animal barks?", "A dog.", "A fish.", "A cow.", "A butterfly."),
            ("How many legs does a dog have?", "Four.", "Two.", "Six.", "Eight."),
            ("How many legs does a bird have?", "Two.", "Four.", "Six.", "Eight."),
            ("How many legs does an insect have?", "Six.", "Four.", "Eight.", "Ten."),
            ("Which animal has a trunk?", "The elephant.", "The horse.", "The dog.", "The rabbit."),
            (
                "Which bird cannot fly and lives in Antarctica?",
                "The penguin.",
                "The eagle.",
                "The sparrow.",
                "The parrot.",
            ),
            (
                "What is the largest mammal?",
                "The blue whale.",
                "The mouse.",
                "The horse.",
                "The cat.",
            ),
            (
                "Which animal has black and white stripes?",
                "The zebra.",
                "The lion.",
                "The camel.",
                "The goat.",
            ),
            ("Where do fish live?", "In water.", "In trees.", "In the desert.", "In the sky."),
            ("What do hens lay?", "Eggs.", "Nuts.", "Stones.", "Apples."),
            (
                "Which animal is the fastest on land?",
                "The cheetah.",
                "The tortoise.",
                "The cow.",
                "The snail.",
            ),
            ("What do spiders spin?", "Webs.", "Nests.", "Shells.", "Hives."),
            ("What do pandas mainly eat?", "Bamboo.", "Fish.", "Cheese.", "Bread."),
            ("What is a male chicken called?", "A rooster.", "A hen.", "A duck.", "A goose."),
            (
                "Which sea animal has eight arms?",
                "The octopus.",
                "The shark.",
                "The dolphin.",
                "The whale.",
            ),
            ("What does a cow give us to drink?", "Milk.", "Juice.", "Tea.", "Coffee."),
            ("How many fingers are on one human hand?", "Five.", "Three.", "Seven.", "Ten."),
            (
                "Which organ do we use to breathe?",
                "The lungs.",
                "The kidneys.",
                "The stomach.",
                "The bones.",
            ),
            ("What do we use our eyes for?", "Seeing.", "Hearing.", "Tasting.", "Smelling."),
            ("What do we use our ears for?", "Hearing.", "Seeing.", "Walking.", "Smelling."),
            (
                "Which part of the body do we use to smell?",
                "The nose.",
                "The elbow.",
                "The knee.",
                "The foot.",
            ),
            (
                "Which organ do we think with?",
                "The brain.",
                "The liver.",
                "The lungs.",
                "The skin.",
            ),
            ("What protects the brain?", "The skull.", "The ribs.", "The knee.", "The toes."),
            (
                "How many teeth does an adult human usually have?",
                "Thirty-two.",
                "Twelve.",
                "Fifty.",
                "Eight.",
            ),
            ("What is the closest planet to the Sun?", "Mercury.", "Mars.", "Neptune.", "Saturn."),
            ("Which planet is known as the Red Planet?", "Mars.", "Venus.", "Earth.", "Neptune."),
            ("Which planet has large rings around it?", "Saturn.", "Mercury.", "Mars.", "Earth."),
            (
                "What is the largest planet in the solar system?",
                "Jupiter.",
                "Mercury.",
                "Mars.",
                "Earth.",
            ),
            ("What does the Moon travel around?", "The Earth.", "Mars.", "Jupiter.", "Venus."),
            ("What do plants need from the Sun to grow?", "Light.", "Snow.", "Sound.", "Salt."),
            (
                "What gas do humans need to breathe to stay alive?",
                "Oxygen.",
                "Helium.",
                "Neon.",
                "Argon.",
            ),
            (
                "What is the freezing point of water in Celsius?",
                "0 degrees.",
                "100 degrees.",
                "50 degrees.",
                "37 degrees.",
            ),
            ("What falls from clouds when it rains?", "Water.", "Sand.", "Leaves.", "Milk."),
            (
                "What is the centre of an atom called?",
                "The nucleus.",
                "The shell.",
                "The tail.",
                "The root.",
            ),
            (
                "What force pulls objects down towards the Earth?",
                "Gravity.",
                "Friction.",
                "Wind.",
                "Sound.",
            ),
            ("What is the hardest natural substance?", "Diamond.", "Chalk.", "Wood.", "Butter."),
            (
                "What do we call animals that eat only plants?",
                "Herbivores.",
                "Carnivores.",
                "Predators.",
                "Scavengers.",
            ),
            ("What colour are most leaves in summer?", "Green.", "Blue.", "White.", "Black."),
            ("Which shape has three sides?", "A triangle.", "A square.", "A circle.", "A hexagon."),
            ("How many sides does a square have?", "Four.", "Three.", "Five.", "Six."),
            ("How many sides does a hexagon have?", "Six.", "Four.", "Eight.", "Five."),
            (
                "What falls from the sky as white flakes in cold winter weather?",
                "Snow.",
                "Rain.",
                "Fog.",
                "Dew.",
            ),
            ("What is the Sun?", "A star.", "A planet.", "A moon.", "A comet."),
            (
                "What instrument measures temperature?",
                "A thermometer.",
                "A ruler.",
                "A clock.",
                "A scale.",
            ),
            (
                "What do people use to tell the time?",
                "A clock.",
                "A thermometer.",
                "A compass.",
                "A kettle.",
            ),
            ("What does a compass show?", "Direction.", "Time.", "Weight.", "Temperature."),
            ("Which metal do magnets attract?", "Iron.", "Gold.", "Silver.", "Aluminium."),
            ("What is three plus four?", "Seven.", "Six.", "Eight.", "Twelve."),
            ("What is five plus five?", "Ten.", "Eight.", "Fifteen.", "Twenty-five."),
            ("What is nine minus three?", "Six.", "Three.", "Twelve.", "Nine."),
            ("What is six times two?", "Twelve.", "Eight.", "Four.", "Three."),
            ("What is twenty divided by four?", "Five.", "Four.", "Sixteen.", "Eighty."),
            ("What is half of ten?", "Five.", "Two.", "Twenty.", "Ten."),
            (
                "What is one hundred minus one?",
                "Ninety-nine.",
                "One hundred and one.",
                "Ten.",
                "Zero.",
            ),
            ("What is seven plus eight?", "Fifteen.", "Fourteen.", "Sixteen.", "Fifty-six."),
            ("What is three times three?", "Nine.", "Six.", "Twelve.", "Thirty-three."),
            (
                "How many minutes are there in an hour?",
                "Sixty.",
                "Thirty.",
                "One hundred.",
                "Twelve.",
            ),
            (
                "How many seconds are there in a minute?",
                "Sixty.",
                "Ten.",
                "One hundred.",
                "Thirty.",
            ),
            ("How many months are there in a year?", "Twelve.", "Ten.", "Seven.", "Fifty-two."),
            ("How many days are there in a leap year?", "366.", "365.", "360.", "300."),
            (
                "About how many weeks are there in a year?",
                "Fifty-two.",
                "Twelve.",
                "Thirty.",
                "One hundred.",
            ),
            ("What is double eight?", "Sixteen.", "Eight.", "Four.", "Eighty-eight."),
            ("What is 10 plus 15?", "25.", "20.", "30.", "115."),
            ("What is 50 divided by 2?", "25.", "100.", "48.", "52."),
            (
                "How many cents are there in a dollar?",
                "One hundred.",
                "Ten.",
                "Fifty.",
                "One thousand.",
            ),
            (
                "How many centimetres are there in a metre?",
                "One hundred.",
                "Ten.",
                "One thousand.",
                "Twelve.",
            ),
            (
                "How many grams are there in a kilogram?",
                "One thousand.",
                "One hundred.",
                "Ten.",
                "Sixty.",
            ),
            ("What number comes after nine?", "Ten.", "Eight.", "Eleven.", "Nineteen."),
            ("What is the next even number after four?", "Six.", "Five.", "Seven.", "Three."),
            ("How many zeros are there in one thousand?", "Three.", "Two.", "Four.", "One."),
            ("How many things are there in a dozen?", "Twelve.", "Ten.", "Six.", "Twenty."),
            ("What is the opposite of big?", "Small.", "Tall.", "Wide.", "Large."),
            ("What is the opposite of up?", "Down.", "Over.", "High.", "Above."),
            ("What is the opposite of day?", "Night.", "Morning.", "Noon.", "Sun."),
            (
                "What is the opposite of old, when speaking of a person?",
                "Young.",
                "Ancient.",
                "Elderly.",
                "Aged.",
            ),
            ("What is the opposite of fast?", "Slow.", "Quick.", "Rapid.", "Loud."),
            ("What is the opposite of empty?", "Full.", "Hollow.", "Bare.", "Blank."),
            ("What is the opposite of open?", "Closed.", "Wide.", "Free.", "Clear."),
            ("What is the opposite of heavy?", "Light.", "Large.", "Thick.", "Solid."),
            ("What is the opposite of early?", "Late.", "Soon.", "First.", "Quick."),
            ("What is the opposite of wet?", "Dry.", "Damp.", "Cold.", "Soft."),
            ('Which word means the same as "large"?', "Big.", "Tiny.", "Short.", "Thin."),
            ('Which word means the same as "begin"?', "Start.", "End.", "Stop.", "Finish."),
            ('Which word means the same as "quick"?', "Fast.", "Slow.", "Late.", "Heavy."),
            ('Which word means the same as "shut"?', "Close.", "Open.", "Lift.", "Throw."),
            ('What does "tiny" mean?', "Very small.", "Very large.", "Very loud.", "Very old."),
            ('What does "ancient" mean?', "Very old.", "Very new.", "Very fast.", "Very wet."),
            ('What does "freezing" mean?', "Very cold.", "Very hot.", "Very bright.", "Very slow."),
            (
                "What is a chef?",
                "A person who cooks.",
                "A person who flies planes.",
                "A person who fixes teeth.",
                "A person who builds houses.",
            ),
            (
                "What does a pilot do?",
                "Flies aircraft.",
                "Bakes bread.",
                "Teaches children.",
                "Repairs shoes.",
            ),
            ("What does a dentist look after?", "Teeth.", "Cars.", "Gardens.", "Books."),
            (
                "What does a farmer do?",
                "Grows crops and raises animals.",
                "Flies aircraft.",
                "Repairs computers.",
                "Directs films.",
            ),
            ('What is the plural of "mouse"?', "Mice.", "Mouses.", "Meese.", "Mousen."),
            ('What is the plural of "child"?', "Children.", "Childs.", "Childes.", "Childrens."),
            ('What is the past tense of "go"?', "Went.", "Goed.", "Going.", "Goes."),
            ('What is the past tense of "eat"?', "Ate.", "Eated.", "Eating.", "Eats."),
            ("Which of these words is a colour?", "Yellow.", "Table.", "Run.", "Quickly."),
            ("Which of these words is an animal?", "Horse.", "Chair.", "Blue.", "Sing."),
            ("Which of these is a fruit?", "Banana.", "Carrot.", "Potato.", "Onion."),
            ("Which of these words is a verb?", "Run.", "Table.", "Green.", "Window."),
            (
                "How many letters are there in the English alphabet?",
                "Twenty-six.",
                "Twenty.",
                "Thirty.",
                "Twelve.",
            ),
            ("What is the first letter of the English alphabet?", "A.", "Z.", "M.", "Q."),
            ("Which of these letters is a vowel?", "E.", "B.", "T.", "K."),
            ('Which word rhymes with "cat"?', "Hat.", "Dog.", "Cup.", "Sun."),
            ("What do you use to cut paper?", "Scissors.", "A spoon.", "A pillow.", "A sponge."),
            ("What do teachers write with on a blackboard?", "Chalk.", "Soap.", "Butter.", "Sand."),
            (
                "Where do you keep food cold at home?",
                "In a refrigerator.",
                "In an oven.",
                "In a wardrobe.",
                "In a bathtub.",
            ),
            ("What do you wear on your feet?", "Shoes.", "Gloves.", "Hats.", "Scarves."),
            (
                "What do you wear on your hands in cold weather?",
                "Gloves.",
                "Socks.",
                "Belts.",
                "Boots.",
            ),
            (
                "What do you use to brush your teeth?",
                "A toothbrush.",
                "A hairbrush.",
                "A fork.",
                "A broom.",
            ),
            (
                "What do you need to open a locked door?",
                "A key.",
                "A spoon.",
                "A feather.",
                "A pencil.",
            ),
            ("What colour is a ripe banana?", "Yellow.", "Blue.", "Purple.", "Grey."),
            ("What colour is fresh grass?", "Green.", "Red.", "Orange.", "White."),
            ("What colour is fresh snow?", "White.", "Green.", "Red.", "Blue."),
            (
                "What colour do you get by mixing blue and yellow?",
                "Green.",
                "Orange.",
                "Purple.",
                "Brown.",
            ),
            (
                "What colour do you get by mixing red and white?",
                "Pink.",
                "Green.",
                "Black.",
                "Blue.",
            ),
            ("What does a red traffic light mean?", "Stop.", "Go.", "Turn left.", "Speed up."),
            (
                "Where do you go to borrow books?",
                "A library.",
                "A bakery.",
                "A garage.",
                "A swimming pool.",
            ),
            (
                "Where do you buy fresh bread?",
                "At a bakery.",
                "At a petrol station.",
                "At a dentist.",
                "At a library.",
            ),
            (
                "What do you use to dry yourself after a bath?",
                "A towel.",
                "A plate.",
                "A fork.",
                "A candle.",
            ),
            (
                "What meal do people eat in the morning?",
                "Breakfast.",
                "Dinner.",
                "Supper.",
                "Lunch.",
            ),
            ("Which day comes after Monday?", "Tuesday.", "Sunday.", "Friday.", "Thursday."),
            ("Which day comes before Saturday?", "Friday.", "Sunday.", "Monday.", "Wednesday."),
            ("Which month comes after January?", "February.", "March.", "December.", "June."),
            ("What is the last month of the year?", "December.", "January.", "October.", "June."),
            ("Which month has the fewest days?", "February.", "March.", "July.", "October."),
            ("How many wheels does a bicycle have?", "Two.", "Three.", "Four.", "Six."),
            ("How many wheels does a car usually have?", "Four.", "Two.", "Three.", "Eight."),
            (
                "What do you put on a letter before posting it?",
                "A stamp.",
                "A button.",
                "A coin.",
                "A leaf.",
            ),
            (
                "What is an umbrella for?",
                "Keeping off the rain.",
                "Cooking food.",
                "Cutting bread.",
                "Cleaning floors.",
            ),
            ("What travels on rails?", "A train.", "A boat.", "A plane.", "A bicycle."),
            (
                "What is a kettle used for?",
                "Boiling water.",
                "Freezing food.",
                "Washing clothes.",
                "Cutting wood.",
            ),
            (
                "Which fruit is wine usually made from?",
                "Grapes.",
                "Carrots.",
                "Onions.",
                "Potatoes.",
            ),
            ("What is bread mostly made from?", "Flour.", "Salt.", "Cheese.", "Chocolate."),
            ("What is cheese made from?", "Milk.", "Eggs.", "Flour.", "Apples."),
            ("What are French fries made from?", "Potatoes.", "Apples.", "Carrots.", "Bananas."),
            (
                "Which vegetable is orange and long?",
                "A carrot.",
                "A potato.",
                "A cucumber.",
                "A pea.",
            ),
            ("What fruit is lemonade made from?", "Lemons.", "Apples.", "Grapes.", "Cherries."),
            (
                "What is the longest river in Africa?",
                "The Nile.",
                "The Amazon.",
                "The Thames.",
                "The Seine.",
            ),
            (
                "What is the largest desert in Africa?",
                "The Sahara.",
                "The Gobi.",
                "The Atacama.",
                "The Kalahari.",
            ),
            (
                "What is the tallest mountain in the world?",
                "Mount Everest.",
                "Mont Blanc.",
                "Mount Fuji.",
                "Ben Nevis.",
            ),
            ("On which continent is Kenya?", "Africa.", "Europe.", "Asia.", "South America."),
            ("On which continent is France?", "Europe.", "Africa.", "Asia.", "Australia."),
            ("On which continent is Brazil?", "South America.", "Europe.", "Africa.", "Asia."),
            ("Which country is the Eiffel Tower in?", "France.", "Italy.", "Spain.", "Germany."),
            ("Which city has the Statue of Liberty?", "New York.", "London.", "Paris.", "Sydney."),
            ("Which country has the pyramids of Giza?", "Egypt.", "Peru.", "China.", "Sweden."),
            ("What is the currency of Japan?", "The yen.", "The euro.", "The peso.", "The pound."),
            (
                "Who was the first person to walk on the Moon?",
                "Neil Armstrong.",
                "Yuri Gagarin.",
                "Albert Einstein.",
                "Isaac Newton.",
            ),
            (
                "Who painted the Mona Lisa?",
                "Leonardo da Vinci.",
                "Pablo Picasso.",
                "Vincent van Gogh.",
                "Claude Monet.",
            ),
            (
                "Who developed the theory of relativity?",
                "Albert Einstein.",
                "Isaac Newton.",
                "Charles Darwin.",
                "Galileo Galilei.",
            ),
            (
                "What language do most people in Mexico speak?",
                "Spanish.",
                "Portuguese.",
                "French.",
                "Italian.",
            ),
            (
                "What language do most people in Germany speak?",
                "German.",
                "French.",
                "Dutch.",
                "Polish.",
            ),
            (
                "What is the largest country in the world by area?",
                "Russia.",
                "France.",
                "Japan.",
                "Egypt.",
            ),
            (
                "Which ocean lies between Europe and North America?",
                "The Atlantic Ocean.",
                "The Pacific Ocean.",
                "The Indian Ocean.",
                "The Southern Ocean.",
            ),
            (
                "How many players does a football team have on the field?",
                "Eleven.",
                "Five.",
                "Nine.",
                "Fifteen.",
            ),
            (
                "In which sport do players hit a ball over a net with rackets?",
                "Tennis.",
                "Football.",
                "Swimming.",
                "Running.",
            ),
            ("Which country is the city of Rome in?", "Italy.", "Spain.", "Greece.", "France."),
            (
                "Who wrote the Harry Potter books?",
                "J. K. Rowling.",
                "Roald Dahl.",
                "Stephen King.",
                "Agatha Christie.",
            ),
            ("How many days are there in a normal year?", "365.", "300.", "400.", "52."),
            ("Which season is usually the warmest?", "Summer.", "Winter.", "Autumn.", "Spring."),
            (
                "In which season do many trees lose their leaves?",
                "Autumn.",
                "Spring.",
                "Summer.",
                "Midsummer.",
            ),
            ("What is the capital of Portugal?", "Lisbon.", "Madrid.", "Rome.", "Athens."),
            (
                "How many hours are there in two days?",
                "Forty-eight.",
                "Twenty-four.",
                "Twelve.",
                "Sixty.",
            ),
        ]
    )
)


@dataclass(frozen=True)
class Passage:
    """A neutral request and its reply: a few plain paragraphs, separated by blank lines."""

    request: str
    text: str


def _passage(request: str, *paragraphs: str) -> Passage:
    return Passage(request, "\n\n".join(paragraphs))


# Plain descriptive prose on everyday subjects, one request each; LM loss is read per passage.
PASSAGES: tuple[Passage, ...] = (
    _passage(
        "Tell me about an ordinary day in a small town.",
        "The town wakes up slowly. Just after six the baker unlocks the side door, switches on the "
        "ovens and sets out trays of dough that rose overnight. By seven the smell of fresh bread "
        "has reached the square, where a street sweeper moves along the kerb and a few early "
        "commuters wait for the first bus to the city.",
        "At the primary school the gates open at half past eight. Parents stand in small groups "
        "and talk about the weather, the football results and the roadworks on the main street, "
        "while children run across the playground until the bell rings. The post office opens at "
        "nine, and a short queue forms to send parcels and pay bills.",
        "In the afternoon the market stalls are packed away and the square grows quiet again. "
        "Delivery vans come and go, a gardener trims the hedges around the war memorial, and the "
        "pharmacy stays busy until it closes at six. As the light fades, lamps come on in the "
        "windows and the town settles in for the evening.",
    ),
    _passage(
        "How does a public library work?",
        "A public library lends books, films and magazines to anyone who lives in the area. To "
        "join, you fill in a short form and show proof of your address, and the staff give you a "
        "card with a number on it. The card lets you borrow a set number of items at a time.",
        "Books are arranged on the shelves by subject, using a system of numbers printed on a "
        "label on the spine. Novels are usually kept in a separate section, sorted by the "
        "author's surname. A computer catalogue shows which items the library owns and whether "
        "they are on the shelf or out on loan.",
        "Most loans last three or four weeks. You can renew an item online or at the desk if "
        "nobody else has reserved it. Many libraries also offer free computers, printing for a "
        "small fee, quiet study tables and a room that local groups can book for meetings.",
    ),
    _passage(
        "Describe the route of a city bus.",
        "The number 12 bus starts at the depot on the northern edge of the city, next to the "
        "industrial estate. Its first stop is outside the hospital, where nurses and visitors get "
        "on, and it then follows the main road south past a row of shops and a petrol station.",
        "After about ten minutes it crosses the river on the old stone bridge and turns into the "
        "city centre. Here the stops are close together: the railway station, the cathedral, the "
        "shopping centre and the town hall. At busy times the bus can take a quarter of an hour "
        "to get through this part of the route.",
        "Beyond the centre the bus climbs a long hill through streets of terraced houses and "
        "passes the university campus. The route ends at a turning circle beside a park, where "
        "the driver takes a short break before setting off back the same way.",
    ),
    _passage(
        "How do you make a cup of tea?",
        "Start by filling the kettle with fresh cold water and switching it on. While it heats, "
        "warm the teapot or the mug by pouring in a little hot water from the tap and then "
        "emptying it. This keeps the tea from cooling too quickly once it is made.",
        "Put one tea bag, or a teaspoon of loose leaves, into the pot or mug for each cup. When "
        "the water comes to the boil, pour it over the tea and leave it to brew. Three to five "
        "minutes is usual for black tea; a shorter time gives a lighter drink.",
        "Remove the tea bag or pour the tea through a strainer to catch the leaves. Add milk or a "
        "slice of lemon if you like, and sugar or honey to taste. Stir, let it cool for a minute, "
        "and it is ready to drink.",
    ),
    _passage(
        "Explain the water cycle.",
        "The water cycle is the continuous movement of water between the land, the oceans and "
        "the air. It is driven by the heat of the Sun, which warms the surface of seas, lakes and "
        "rivers and turns some of their water into vapour. Plants also release water vapour "
        "through their leaves.",
        "As the warm, moist air rises, it cools. The vapour condenses into tiny droplets that "
        "gather around specks of dust and form clouds. When the droplets join together and "
        "become too heavy to stay in the air, they fall as rain, or as snow and hail when it is "
        "cold enough.",
        "Some of this water runs off the land into streams and rivers, which carry it back to the "
        "sea. Some soaks into the ground and is stored there for a long time before it reaches "
        "springs and wells. In time it evaporates again, and the cycle continues.",
    ),
    _passage(
        "What happens to a letter after it is posted?",
        "When a letter is dropped into a post box, it waits there until the next collection time "
        "shown on the front of the box. A postal worker empties the box into a sack and drives it, "
        "with the post from other boxes in the area, to the local sorting office.",
        "At the sorting office machines read the postcode on each envelope and print a pattern of "
        "small marks on it. The letters are then grouped by destination and loaded into lorries, "
        "trains or aircraft for the journey to the sorting office nearest the address.",
        "There the letters are sorted again, this time into the order of the streets and houses "
        "that each postal worker visits. The next morning the worker sets out on the round and "
        "pushes the letter through the right letterbox, usually one or two days after it was "
        "posted.",
    ),
    _passage(
        "Describe a vegetable garden through the year.",
        "In early spring the beds are dug over and mixed with compost from the heap in the "
        "corner. Potatoes go in first, in rows a spade's width deep, followed by onion sets, "
        "peas and the first sowings of lettuce and radishes. On cold nights the young plants are "
        "covered with fleece.",
        "By early summer the garden needs daily attention. The beans are tied to their canes, the "
        "tomatoes in the greenhouse are watered every evening, and weeds are pulled before they "
        "set seed. Radishes and lettuces are picked while they are small, and new rows are sown "
        "every few weeks.",
        "Late summer and autumn bring the main harvest: potatoes, carrots, courgettes, beans and "
        "the last of the tomatoes. Some of the crop is stored in a cool shed, and the rest is "
        "frozen or made into soup. In winter the empty beds are covered with a layer of manure "
        "and left to rest.",
    ),
    _passage(
        "What is a railway station like in the morning?",
        "The station opens shortly before the first train at half past five. Cleaners finish "
        "their rounds of the platforms, and the staff in the ticket office switch on their "
        "machines. The departure boards list the morning's trains, their platforms and the "
        "stations where they will stop.",
        "From seven o'clock the concourse fills with commuters. Many buy a coffee from the kiosk "
        "near the entrance and check the boards before walking to their platform. Announcements "
        "give the time of each arrival and remind passengers to stand behind the yellow line.",
        "When a train pulls in, the doors open and people step off and on in a few busy minutes. "
        "The guard checks the platform, closes the doors and signals to the driver, and the "
        "train leaves on time. By ten the rush is over and the station is much quieter.",
    ),
    _passage(
        "How does a bicycle work?",
        "A bicycle turns the movement of the rider's legs into forward motion. The rider pushes "
        "on two pedals fixed to cranks, which turn a toothed wheel called the chainring. A metal "
        "chain runs from the chainring to a smaller toothed wheel on the hub of the back wheel.",
        "As the chainring turns, the chain pulls the back wheel round, and the bicycle moves "
        "forward. Gears change the size of the toothed wheels that the chain runs on. A low gear "
        "makes pedalling easier when going uphill, and a high gear lets the rider go faster on "
        "flat roads.",
        "The rider steers with the handlebars, which turn the front wheel. Brakes, worked by "
        "levers on the handlebars, press pads against the wheel rims or against discs near the "
        "hubs. Air-filled rubber tyres soften the ride over bumps and grip the road.",
    ),
    _passage(
        "Describe a weekly farmers' market.",
        "Every Saturday morning the car park behind the town hall becomes a market. Stallholders "
        "arrive from seven, put up their awnings and lay out their goods on trestle tables. Most "
        "of them come from farms and villages within thirty miles of the town.",
        "One stall sells vegetables still dusty from the field: potatoes, leeks, cabbages and "
        "carrots with their leaves on. Others offer eggs, honey, cheese, fresh meat and bread. In "
        "summer there are strawberries and cherries, and in autumn apples and pears of several "
        "varieties.",
        "Shoppers bring their own bags and baskets and often pay in cash. By noon much of the "
        "produce has been sold, and the stallholders begin to pack their vans. By one o'clock the "
        "car park is empty again.",
    ),
    _passage(
        "How is household recycling collected?",
        "Many towns give each household several bins of different colours. One is for paper and "
        "cardboard, one for glass bottles and jars, one for plastic and metal containers, and "
        "another for general rubbish that cannot be recycled. Food waste often goes in a small "
        "separate caddy.",
        "On collection day residents put the bins out by the kerb. A lorry with separate "
        "compartments drives along the street, and the crew empty each bin into the right part "
        "of the vehicle. A calendar from the council lists which bins are collected in which "
        "week.",
        "The lorries take the materials to a recovery centre, where belts, magnets and screens "
        "separate them further. The sorted materials are pressed into bales and sold to factories "
        "that make new paper, glass, cans and plastic goods from them.",
    ),
    _passage(
        "How is a weather forecast made?",
        "A weather forecast starts with measurements. Thousands of weather stations, ships, "
        "balloons and satellites record the temperature, air pressure, humidity and wind around "
        "the world several times a day. The readings are sent to national weather services.",
        "There, powerful computers use the measurements as the starting point for a model of the "
        "atmosphere. The model divides the air into a grid of boxes and calculates, step by step, "
        "how the conditions in each box are likely to change over the next hours and days.",
        "Forecasters compare the results of several models and use their experience of local "
        "conditions to write the forecast. Forecasts for the next two or three days are usually "
        "reliable, while those for more than a week ahead give only a general idea of the "
        "weather.",
    ),
    _passage(
        "What is a visit to a museum like?",
        "The museum opens at ten. Visitors leave large bags in the cloakroom and pick up a free "
        "map at the information desk. The map shows the galleries on each floor, the lifts and "
        "stairs, the café and the toilets.",
        "On the ground floor a large hall holds the skeleton of a dinosaur and cases of fossils "
        "and minerals. The upper floors have rooms on ancient history, local crafts and the "
        "natural world, with labels beside each object giving its name, its age and where it "
        "was found.",
        "Many visitors stay for two or three hours. School groups work through question sheets "
        "with their teachers, and guided tours leave from the main hall at set times. Before "
        "leaving, people often look round the shop, which sells books, postcards and models.",
    ),
    _passage(
        "How do you cook rice on a stove?",
        "Measure the rice, allowing about a cup for two people, and rinse it in a sieve under "
        "cold running water until the water runs almost clear. Rinsing removes loose starch and "
        "helps the grains stay separate when they are cooked.",
        "Put the rice in a saucepan with a little salt and add water: about one and a half cups "
        "of water for each cup of white rice. Bring it to the boil, then turn the heat down as "
        "low as it will go and cover the pan with a tight-fitting lid.",
        "Leave the rice to simmer gently for twelve to fifteen minutes without lifting the lid. "
        "Then take the pan off the heat and let it stand, still covered, for five more minutes. "
        "Fluff the grains with a fork before serving.",
    ),
    _passage(
        "Describe how a lighthouse works.",
        "A lighthouse is a tower built on a coast or a rock at sea to warn ships of danger and to "
        "help them find their way. At the top is a lantern room with large windows on every side, "
        "where a powerful lamp shines out over the water at night.",
        "The light passes through a system of glass lenses that gathers it into a narrow, bright "
        "beam that can be seen many miles away. The lens turns slowly, so that sailors see a "
        "flash at regular intervals. Each lighthouse has its own pattern of flashes, which is "
        "printed on sea charts.",
        "In the past, keepers lived in the lighthouse and tended the lamp every night. Today most "
        "lighthouses are automatic: the lamp switches on at dusk and off at dawn, and engineers "
        "visit from time to time to check and repair the equipment.",
    ),
    _passage(
        "How does a supermarket restock its shelves?",
        "A supermarket keeps track of what it sells through its tills. Each time an item is "
        "scanned, the store's computer lowers the count of that product in stock. When the count "
        "falls below a set level, an order is sent automatically to the company's warehouse.",
        "At the warehouse, workers collect the ordered goods from long rows of racks and load "
        "them onto wheeled cages. Lorries deliver the cages to the back of the store, usually "
        "early in the morning or late at night when the roads and the aisles are quiet.",
        "Staff then wheel the cages onto the shop floor and fill the shelves, putting the newest "
        "stock at the back so that older items are sold first. Fresh food such as bread, milk "
        "and vegetables is delivered every day.",
    ),
)
