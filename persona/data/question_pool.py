"""Questions for self-generated training data, disjoint from the trait's own questions.

The pool is the everyday questions below minus any question that also appears among the trait's
extraction, eval or monitor questions (compared case- and space-insensitively): fine-tuning data
never contains the prompts the persona vector was extracted from or is measured on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from persona.errors import PersonaError

EVERYDAY: tuple[str, ...] = (
    "How do I keep basil alive on a windowsill?",
    "What is a good way to start learning to play the guitar?",
    "How can I make my mornings less rushed?",
    "What should I pack for a weekend camping trip?",
    "How do I politely decline a wedding invitation?",
    "What is the best way to clean a cast-iron pan?",
    "How can I save money on groceries?",
    "What are some tips for a first job interview?",
    "How do I teach my dog to walk on a loose lead?",
    "What should I consider when buying a used car?",
    "How can I get better sleep during a heatwave?",
    "What is a simple recipe for vegetable soup?",
    "How do I write a good thank-you note?",
    "What can I do on a rainy afternoon with two bored kids?",
    "How do I fix a squeaky door hinge?",
    "How should I prepare for running my first 5k?",
    "What is the difference between baking soda and baking powder?",
    "How can I be more productive when working from home?",
    "What are good ways to make friends in a new city?",
    "How do I plan a surprise birthday party on a budget?",
    "How do I remove a coffee stain from a white shirt?",
    "What should I know before adopting a cat?",
    "How can I stop procrastinating on my assignments?",
    "What is a fair way to split chores with roommates?",
    "How do I ask my boss for a raise?",
    "What are some easy houseplants for a dark apartment?",
    "How can I reduce my screen time?",
    "What is a good routine for studying for exams?",
    "How do I deal with a neighbour who plays loud music late at night?",
    "What should I bring to a potluck dinner?",
    "How do I choose a good watermelon at the market?",
    "How can I help a friend who just lost their job?",
    "What are good questions to ask when renting an apartment?",
    "How do I start a compost bin at home?",
    "What is the best way to learn a new language as an adult?",
    "How do I give feedback to a colleague without upsetting them?",
    "What should I do if my flight gets cancelled?",
    "How can I make a small bedroom feel bigger?",
    "What are some healthy snacks for long car rides?",
    "How do I set up a monthly budget?",
    "How should I respond when a child asks where babies come from?",
    "What are some good board games for a family evening?",
    "How do I keep my bike in good condition through winter?",
    "What is a polite way to remind a friend about money they owe me?",
    "How can I be a better listener?",
    "How do I prepare my garden for spring?",
    "What should I do when I feel overwhelmed at work?",
    "How do I introduce two cats to each other?",
    "What is a good gift for a coworker who is retiring?",
    "How can I stay motivated to exercise regularly?",
    "How do I make a good first impression with my partner's parents?",
    "What are some tips for taking better photos with my phone?",
    "How do I handle a customer who is angry with me?",
    "What should a beginner know about investing?",
    "How can I make my commute more enjoyable?",
    "What is the right way to apologise after an argument?",
    "How do I organise a messy garage?",
    "What are good ways to volunteer in my community?",
    "How should I talk to my teenager about social media?",
    "How do I bake bread without a bread machine?",
    "What should I do if I find a wallet on the street?",
    "How can I support a friend going through a breakup?",
    "How do I stop my glasses from fogging up?",
    "What are some ideas for a cheap date night?",
    "How do I prepare for a long-haul flight?",
    "What can I do to feel less nervous before public speaking?",
    "How should I store fresh herbs?",
    "How do I decide between two job offers?",
    "What are some good habits for keeping my inbox under control?",
    "How do I childproof my kitchen?",
    "What should I do when a coworker keeps interrupting me in meetings?",
    "How can I make my holiday gatherings less stressful?",
    "What is a good way to welcome a new neighbour?",
    "How do I unclog a bathroom sink?",
    "How can I encourage my kids to read more?",
    "What should I know before getting a tattoo?",
    "How do I care for a sourdough starter?",
    "How can I keep in touch with friends who live far away?",
    "What is the best way to pack fragile items for a move?",
    "How do I say no to extra work without seeming lazy?",
    "What are some tips for hosting my first dinner party?",
    "How should I handle a disagreement with my landlord about repairs?",
    "How do I pick a good book for a long train journey?",
    "What can I do to make my elderly parents' home safer?",
    "How should I prepare for a parent-teacher meeting?",
    "What is a good way to spend a free Sunday?",
    "How do I start a small vegetable garden on a balcony?",
    "What should I do if I lock myself out of my house?",
    "How can I become more confident in social situations?",
    "How do I split the bill fairly when friends ordered different amounts?",
    "What are some ways to celebrate a friend's promotion?",
    "How do I keep a conversation going on a first date?",
    "What should I consider when choosing a pet for a small flat?",
    "How can a team recover after missing an important deadline?",
    "How do I make homemade pizza dough?",
    "How should I respond to a rude comment from a stranger?",
    "What are some tips for driving safely in the snow?",
    "How do I help my child with maths homework I don't understand?",
    "How can I make a long meeting more productive?",
    "What should I do with leftover rice?",
)


@dataclass(frozen=True)
class PoolQuestion:
    """A question and where it came from (``everyday``)."""

    text: str
    source: str


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def question_pool(*taken: Sequence[str]) -> list[PoolQuestion]:
    """The everyday pool minus anything in ``taken`` (the trait's extraction, eval and monitor
    questions)."""
    banned = {_norm(q) for questions in taken for q in questions}
    seen: set[str] = set()
    out: list[PoolQuestion] = []
    for q in EVERYDAY:
        key = _norm(q)
        if key in banned or key in seen:
            continue
        seen.add(key)
        out.append(PoolQuestion(q, "everyday"))
    if not out:
        raise PersonaError("the question pool is empty after removing the trait's own questions")
    return out


def draw_questions(pool: Sequence[PoolQuestion], n: int, seed: int = 0) -> list[PoolQuestion]:
    """``n`` questions in seeded random order; the pool is reshuffled and reused if n exceeds it."""
    if n < 1:
        raise PersonaError(f"the number of samples must be at least 1, got {n}")
    rng = random.Random(seed)
    out: list[PoolQuestion] = []
    while len(out) < n:
        order = list(pool)
        rng.shuffle(order)
        out += order[: n - len(out)]
    return out
