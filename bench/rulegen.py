"""Synthetic rules shaped like the shipped ones, for soaks and scale runs (issue #21).

    .venv/bin/python -m bench.rulegen DIR --rules 1000 [--seed 1] [--per-file 50]

Writes DIR/synthetic-NN.yaml, `--per-file` rules a file, next to the shipped rule files (it
does not copy them: the rules use the shipped shared sets `$russia`, `$cuba`, … so DIR must hold
config/rules/actors.yaml and state-acts.yaml for them to load). The rules are what real ones are
made of, so that compiling them takes the same paths: `any`/`all`/`not` groups and a few `near`,
plain words in their dictionary form in English, Spanish and Russian (inflection, the lexicon),
phrases, a few `word*` prefixes, shared `$set` references and term sets of the file's own, and
examples for one rule in four (which `monitor check` and the daemon's loads run). Most rules are
built of words the feed farm (../shared/bench/feedfarm.py) never writes, so they match rarely;
one in 25 pairs a watch word of the farm (Russia, Cuba, Havana, Moscow) with a farm noun
(sanctions, talks, oil, …), so that some alerts come from them. A pure function of the seed.
"""

from __future__ import annotations

import argparse
import random
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Words and phrases the farm never writes, each in its dictionary form.
RARE = {
    "en": """volcano|glacier|lighthouse|cathedral|orchestra|vineyard|shipyard|tobacco|nickel|
        hurricane|cyclone|locust|telescope|fisherman|icebreaker|tanker|frigate|wheat|fertilizer|
        bauxite|lithium|cobalt|sugar harvest|power plant|nuclear power plant|fishing fleet|
        blackout|submarine cable|hunger strike|political prisoner|remittance|cruise ship""",
    "es": """volcán|huracán|cosecha|astillero|refinería|azúcar|tabaco|níquel|zafra|apagón|
        gasolina|remesa|buque|petrolero|fragata|trigo|fertilizante|cobre|litio|
        central termoeléctrica|crisis energética|huelga de hambre|preso político|cancillería|
        vacuna cubana""",
    "ru": """вулкан|урожай|верфь|нефтепровод|танкер|фрегат|пшеница|удобрение|сахар|табак|никель|
        электростанция|посольство|ледокол|спутник связи|атомная электростанция|подводная лодка|
        государственный визит|торговое судно""",
}
WORDS = {lang: [w.strip() for w in text.split("|")] for lang, text in RARE.items()}
# Prefixes for word families, with a word each reaches (for the examples).
PREFIXES = {
    "archaeolog*": "archaeologists",
    "refiner*": "refineries",
    "astiller*": "astilleros",
    "удобрени*": "удобрений",
    "электростанц*": "электростанции",
    "volcan*": "volcanic",
}
# Shared sets of config/rules (actors.yaml, state-acts.yaml), with a word each matches.
SETS = {
    "russia": "Russia",
    "cuba": "Havana",
    "venezuela": "Caracas",
    "nicaragua": "Managua",
    "russia_officials": "Lavrov",
    "cuba_officials": "Díaz-Canel",
}
EXCLUDE_SETS = ["sport", "leisure_and_trade", "non_state"]
# What the farm's items are made of: its watch words and some of its nouns.
WATCH = ["Russia", "Cuba", "Havana", "Moscow"]
FARM_NOUNS = ["sanction", "talk", "oil", "deal", "embargo", "treaty", "summit", "loan", "grain"]
SEVERITIES = ["low"] * 5 + ["medium"] * 3 + ["high"]
HIT_EVERY = 25
EXAMPLE_EVERY = 4


@dataclass
class Condition:
    """A piece of `match:` and words of an item that satisfies it (None: cannot say)."""

    spec: Any
    witness: list[str] | None = field(default_factory=list)


def term(rng: random.Random) -> Condition:
    """A word, a phrase or (one in eight) a prefix, in one of the three languages."""
    if rng.random() < 0.125:
        prefix = rng.choice(sorted(PREFIXES))
        return Condition(prefix, [PREFIXES[prefix]])
    word = rng.choice(WORDS[rng.choice(["en", "en", "es", "ru"])])
    return Condition(word, [word])


def other_term(rng: random.Random, witness: list[str]) -> Any:
    """A term for `not:` that shares no word start with `witness` (so it cannot veto it)."""
    taken = _starts(witness)
    while True:
        candidate = term(rng)
        if not taken & _starts([str(candidate.spec).rstrip("*"), *(candidate.witness or [])]):
            return candidate.spec


def _starts(texts: list[str]) -> set[str]:
    """The first five letters of each word, folded (case, accents): what fuzzy matching keeps."""
    folded = unicodedata.normalize("NFKD", " ".join(texts).lower())
    return {word[:5] for word in "".join(c for c in folded if not unicodedata.combining(c)).split()}


def any_of(rng: random.Random, low: int, high: int) -> Condition:
    terms = [term(rng) for _ in range(rng.randint(low, high))]
    return Condition({"any": [t.spec for t in terms]}, terms[0].witness)


def shared_set(rng: random.Random) -> Condition:
    name = rng.choice(sorted(SETS))
    return Condition(f"${name}", [SETS[name]])


def rare_match(rng: random.Random, own_sets: dict[str, list[Condition]]) -> Condition:
    """A condition of words the farm does not write: rarely true."""
    shape = rng.randrange(6)
    if shape == 0:  # a list of words
        return any_of(rng, 3, 8)
    if shape == 1:  # a state and one of some words
        place, words = shared_set(rng), any_of(rng, 2, 6)
        return Condition({"all": [place.spec, words.spec]}, place.witness + words.witness)
    if shape == 2:  # two words, with exclusions
        first, second = term(rng), term(rng)
        spec = {"all": [first.spec, second.spec], "not": [f"${rng.choice(EXCLUDE_SETS)}"]}
        return Condition(spec, first.witness + second.witness)
    if shape == 3:  # a state near a word
        place, thing = shared_set(rng), term(rng)
        spec = {"near": [place.spec, thing.spec], "within": rng.choice([3, 5, 8])}
        return Condition(spec, place.witness + thing.witness)
    if shape == 4:  # a set of the file's own, and a state
        name = rng.choice(sorted(own_sets))
        place = shared_set(rng)
        witness = [*(own_sets[name][0].witness or []), *(place.witness or [])]
        spec = {"all": [f"${name}", place.spec], "not": [other_term(rng, witness)]}
        return Condition(spec, witness)
    words = any_of(rng, 2, 5)  # some words, not with others
    return Condition({**words.spec, "not": [term(rng).spec, term(rng).spec]}, None)


def farm_match(rng: random.Random) -> Condition:
    """A watch word of the farm with one of its nouns: true of some farm items."""
    watch = rng.sample(WATCH, rng.randint(1, 2))
    nouns = rng.sample(FARM_NOUNS, rng.randint(1, 3))
    if rng.random() < 0.5:
        spec: Any = {"all": [{"any": watch}, {"any": nouns}]}
    else:
        spec = {"all": ["$russia" if rng.random() < 0.5 else "$cuba", {"any": nouns}]}
    return Condition(spec, None)


def rule(rng: random.Random, number: int, own_sets: dict[str, list[Condition]]) -> dict[str, Any]:
    hits = number % HIT_EVERY == 0
    condition = farm_match(rng) if hits else rare_match(rng, own_sets)
    document: dict[str, Any] = {
        "id": f"synthetic-{number:04d}",
        "title": f"Synthetic rule {number}" + (" (matches some farm items)" if hits else ""),
        "severity": rng.choice(SEVERITIES),
        "match": condition.spec,
    }
    if condition.witness and number % EXAMPLE_EVERY == 0:
        document["examples"] = {"match": [" ".join(condition.witness) + " reported"]}
    return document


def rule_file(rng: random.Random, index: int, numbers: range) -> str:
    own_sets = {
        f"synthetic_{index:02d}_{k}": [term(rng) for _ in range(rng.randint(3, 6))] for k in "ab"
    }
    document = {
        "version": 1,
        "terms": {name: [t.spec for t in terms] for name, terms in own_sets.items()},
        "rules": [rule(rng, number, own_sets) for number in numbers],
    }
    header = "# Generated by bench/rulegen.py: synthetic rules for soaks, not for use.\n"
    return header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)


def generate(count: int, *, seed: int = 1, per_file: int = 50) -> dict[str, str]:
    """File name -> YAML text of `count` rules, `per_file` a file."""
    rng = random.Random(f"rulegen:{seed}")
    return {
        f"synthetic-{index:02d}.yaml": rule_file(
            rng, index, range(start + 1, min(start + per_file, count) + 1)
        )
        for index, start in enumerate(range(0, count, per_file))
    }


def write(directory: Path, count: int, *, seed: int = 1, per_file: int = 50) -> list[Path]:
    paths = []
    for name, text in generate(count, seed=seed, per_file=per_file).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a rules folder (config/rules of a copy)")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=50)
    args = parser.parse_args()
    paths = write(args.directory, args.rules, seed=args.seed, per_file=args.per_file)
    print(f"wrote {args.rules} rules in {len(paths)} files under {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
