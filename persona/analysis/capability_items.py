"""The capability items the project ships: general-knowledge multiple choice and a neutral passage.

Written for this project (easy facts a small chat model may know, no trait content), so that
capability is measured offline on text nobody trained the persona vector or the judge on.
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
        ]
    )
)

PASSAGE_REQUEST = "Tell me about an ordinary day in a small town."

PASSAGE: tuple[str, ...] = (
    "The town wakes up slowly. Just after six the baker unlocks the side door, switches on the "
    "ovens and sets out trays of dough that rose overnight. By seven the smell of fresh bread "
    "has reached the square, where a street sweeper moves along the kerb and a few early "
    "commuters wait for the first bus to the city.",
    "At the primary school the gates open at half past eight. Parents stand in small groups and "
    "talk about the weather, the football results and the roadworks on the main street, while "
    "children run across the playground until the bell rings. The post office opens at nine, "
    "and a short queue forms to send parcels and pay bills.",
    "Around midday the café by the river fills with office workers and retired couples. The "
    "menu changes little from week to week: soup, sandwiches, a salad and a cake of the day. In "
    "the library next door, a volunteer reads a story to a circle of toddlers, and an older man "
    "looks through the local newspaper for the list of planning applications.",
    "In the afternoon the market stalls are packed away and the square grows quiet again. "
    "Delivery vans come and go, a gardener trims the hedges around the war memorial, and the "
    "pharmacy stays busy until it closes at six. As the light fades, people walk their dogs "
    "along the towpath, lamps come on in the windows, and the town settles in for the evening.",
)
