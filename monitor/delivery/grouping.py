"""Whether two alerts of one rule tell the same story.

Thirty outlets reporting one visit in three languages use different words but the same names:
Kolokoltsev, Колокольцев and Kolokóltsev; Havana, La Habana and Гавана; 100,000 and 100 тысяч.
So a story is reduced to its *content words* (title and summary; stop words of en/es/ru dropped),
each folded by the matcher's own folding (monitor/matching/normalize.py), transliterated to a
Latin key and spelled in a rough phonetic form (c/k/q, z/s, y/j/i, doubled letters), so that
one name written in three scripts meets itself. Two tables then join what letters cannot:
`ALIASES`, the names of the shipped rules (Гавана = Havana, EEUU = США = US), and `CONCEPTS`, a
small en/es/ru glossary of the words news of these rules is told in (visit/visita/визит,
sanctions/sanciones/санкции).

Two words *meet* when they are equal, when one is an inflection of the other (the shorter,
4 letters or more, starts the longer, which adds at most 4: визит ~ визитом), or when they are
close spellings of 5 letters or more (rapidfuzz ratio ≥ SPELLING: Kolokolcev ~ Kolokoltsev).

Words carry weights: names, numbers and acronyms weigh ENTITY (a word is a name when it is
written with a capital inside a sentence anywhere in the story, so `Lavrov` opening a headline
is one too; capitals of a Headline In Title Case say nothing); the names every alert of the
shipped rules shares (Russia, Cuba, the United States) weigh GENERIC; other words PLAIN; words of
the title count TITLE times. The similarity of two stories is the weighted Dice coefficient of
their words, 0..100: the weight of each side's words that meet a word of the other, over the
weight of all words of both. Two stories that each name cities (`PLACES`), none in common, are
told of different events: their similarity is multiplied by PLACE_CONFLICT; so is it by
CALL_CONFLICT when one headline tells of a (phone) call and the other does not. A story with less
than MIN_CONTENT besides the generic names (`Cuba`, `US sanctions Cuba`) is too short to tell
by and is similar to nothing. Two stories are one at THRESHOLD or above; `best_match` picks the
most similar candidate at or above it. The figures were tuned on tests/data/grouping/dev.jsonl
(`python -m bench.eval_grouping`, `--ablate` for what each idea brings). `StoryText.lang` is
not needed: folding is the same for every language, and the stop words are all three lists.

What one text yields is computed once and cached; a comparison is a few dict look-ups per word
and one `rapidfuzz.process.extractOne` per long word that met nothing exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from rapidfuzz import fuzz, process

from monitor.text import WORD_CACHE, fold, latin_key, tokenize

K = TypeVar("K")

THRESHOLD = 42.0
SPELLING = 80.0  # ratio of two spellings of one name: Kolokolcev ~ Kolokoltsev scores 95
ENTITY = 2.0
GENERIC = 0.5
PLAIN = 1.0
TITLE = 3.0
PLACE_CONFLICT = 0.5
CALL_CONFLICT = 0.5  # a headline about a call, the other not: a call and a meeting are two events
MIN_CONTENT = 2 * TITLE * PLAIN  # two title words, or a name, besides Russia, Cuba, US
_READ_SUMMARY = True  # off only to measure what summaries bring (bench/eval_grouping.py)
_MIN_PREFIX = 4
_MAX_SUFFIX = 4  # letters an inflection may add: визит → визитами
_MIN_SPELLING = 5

_STOP_WORDS = {
    "en": """a an the of in on at to for from by with and or but as is are was were be been has
    have had it its this that these those after before over about into says said say will would
    his her their they he she we not no than then also more most who which what while when
    where up out off other another all any could should may can""",
    "es": """el la los las un una unos unas de del en y e o u a al con por para que se su sus es
    son fue fueron ha han tras sobre ante entre como mas lo le les este esta estos estas ese esa
    sin desde hasta durante segun muy ya tambien no ni""",
    "ru": """и в во на с со по к о об от до из за для у что как это его ее их не но а же ли при
    после ещё еще уже также был была были будет есть этот эта эти тот та те который которая
    которые""",
}
_STOP = frozenset(word for text in _STOP_WORDS.values() for word in text.split())

# The shipped rules' names as en/es/ru write them, by Latin key: exact keys, then prefixes.
ALIASES_EXACT = {"us": "usa", "usa": "usa", "eeuu": "usa", "ssha": "usa", "rf": "russia"}
ALIASES = {
    "havana": ("havan", "haban", "gavan"),
    "cuba": ("cuba", "kuba", "kubi", "kubo", "kuby", "kubu", "kube"),
    "russia": ("russ", "rusi", "ruso", "rusa", "rossi", "rossii"),
    "moscow": ("moscow", "moscu", "moskv", "moskov"),
    "washington": ("washington", "vashington"),
    "caracas": ("caracas", "karakas"),
    "beijing": ("beijing", "pekin"),
    "managua": ("managua",),
}
_GENERIC = frozenset({"cuba", "russia", "usa"})
# Cities: a story happens in one. Two stories each naming cities, none in common, are apart.
PLACES = frozenset({"havana", "moscow", "washington", "caracas", "beijing", "managua"})

# A glossary of the words these stories are told in: concept, then stems in en/es/ru. A word
# that starts with a stem is the concept if it adds at most _MAX_CONCEPT_SUFFIX letters, and
# fewer than the stem has (`ban` takes `bans`, not `banner`). Stems are spelled as words are,
# so one ending in `c` would never meet `police`: write `police policia`, not `polic`.
CONCEPTS = """
visit: visit visita визит посет
arrive: arriv land lleg arrib aterriz прибы прилет
talks: talks negotiat convers dialog переговор беседова
meet: meet met reuni encuentr recib receiv встреч встрет принял
sign: sign firma firmo rubric suscrib подпис
agreement: agreement deal acuerd convenio соглашени договор
cooperation: cooperat cooperacion collabor colabor сотрудничеств взаимодейств
phone: phone telephon telefon llamada телефон разговор созвон
foreign: foreign exterior cancill иностран мид
interior: interior внутренн мвд минвнудел
defence: defens defence оборон
police: police policia полиц
oil: oil crude petrol crudo нефт
fuel: fuel combustib топлив
tanker: tanker tanquer танкер
ship: ship vessel buque nave судн корабл
warship: warship военн
submarine: submarin подлод подводн
navy: navy naval armada флот
port: port puerto порт harbo bahia бухт
dock: dock atrac швартов
wheat: wheat trigo пшениц зерн grain
donation: donat donativ donacion пожертв безвозмезд
aid: aid humanitar ayuda гуманитар помощ
loan: loan lend credit prestam кредит займ заем
debt: debt deuda долг
tonne: tonne tons tonel тонн
million: million millon млн миллион
thousand: thousand mil тысяч
sanction: sanction sancion санкц blacklist
visa: visa visad виза визы визу визов
ban: ban bars barred prohib veta запрет
restrict: restrict restring curb limit cap ограничи
list: list lista список перечн
terrorism: terror террор
sponsor: sponsor patrocin спонсор
remittance: remittanc remes перевод
money: money dinero деньг денежн
quarter: quarter trimestr квартал
treasury: treasury tesoro минфин
protest: protest протест
crackdown: crackdown represi репресс подавлен
official: official funcionari чиновни
tariff: tariff arancel пошлин duties
decree: decree order decret orden указ постановлен
emergency: emergenc чрезвычайн
return: return vuelv devuelv вернул возвращ
remove: remov excluy excluir sacar исключ
hotel: hotel отел гостиниц
medical: medic doctor врач медицин
mission: mission mision мисси
lawsuit: lawsuit sues sued demanda иск
expel: expel expuls выслал высыл
diplomat: diplomat дипломат
embassy: embass embajad посольств
ambassador: ambassador embajador посол
delegation: delegat delegacion делегац
commission: commission comision комисси межправкомисс
energy: energy energet energ энерг
parliament: parliament parlament assembl asamble ассамбле госдум
parade: parade desfile парад
victory: victory victoria побед
military: military militar воен
weapon: weapon arma оружи
nuclear: nuclear ядерн атомн
training: train cadet entren курсант обучени учебн
railway: rail railway ferrocarril железн
president: president presiden президент
prime: premier премьер
minister: minist министр
secretary: secretar secretari секретар
council: council consejo совет совбез
capital: capital столиц
"""
_MAX_CONCEPT_SUFFIX = 6
_SPELLING_RULES = (
    (re.compile(r"c(?=[ei])"), "s"),
    (re.compile(r"[cq]"), "k"),
    (re.compile(r"x"), "ks"),
    (re.compile(r"z"), "s"),
    (re.compile(r"w"), "v"),
    (re.compile(r"ph"), "f"),
    (re.compile(r"[yj]"), "i"),
    (re.compile(r"(.)\1+"), r"\1"),
)
_ABBREVIATIONS = ((re.compile(r"\bU\.S\.(?=\W|$)"), "US"), (re.compile(r"\bEE\.\s?UU\."), "EEUU"))


@dataclass(frozen=True, slots=True)
class StoryText:
    """What grouping compares of an alert: its item's title and summary, and language hint."""

    title: str
    summary: str = ""
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class _Words:
    """The content words of one story: word → weight, and what inflections look up."""

    weights: dict[str, float]
    total: float
    content: float  # the weight of the words that are not GENERIC
    keys: frozenset[str]  # the words
    stems: frozenset[str]  # each word and each shorter form it may inflect (4+ letters)
    forms: dict[str, frozenset[str]]  # word → the shorter forms it may inflect
    places: frozenset[str]
    call: bool  # the headline tells of a call (by phone, video), which happens in no place
    long: tuple[str, ...]  # words long enough for a spelling match


@lru_cache(maxsize=WORD_CACHE)
def spell(key: str) -> str:
    """A rough phonetic spelling of a Latin key: `kolokolcev`, `kolokoltsev` → `kolokolsev`,
    `kolokoltsev`; `alvarez` = `alvares`; `Díaz-Canel` = `Диас-Канель`."""
    for pattern, replacement in _SPELLING_RULES:
        key = pattern.sub(replacement, key)
    return key


def _concept_table() -> dict[str, tuple[str, int]]:
    """Spelled stem → its concept and how many letters a word may add to it."""
    table: dict[str, tuple[str, int]] = {}
    for line in CONCEPTS.strip().splitlines():
        name, stems = line.split(":")
        for stem in stems.split():
            key = latin_key(fold(stem))
            suffix = min(_MAX_CONCEPT_SUFFIX, len(key) - 1)
            spelled = spell(key)
            table[spelled] = ("#" + name, max(suffix, table.get(spelled, ("", 0))[1]))
    return table


_CONCEPT_STEMS = _concept_table()


@lru_cache(maxsize=WORD_CACHE)
def canonical(key: str) -> str:
    """The form a Latin key is compared in: an alias, a concept (`#visit`) or its spelling."""
    if key in ALIASES_EXACT:
        return ALIASES_EXACT[key]
    for name, prefixes in ALIASES.items():
        if key.startswith(prefixes):
            return name
    spelled = spell(key)
    for cut in range(len(spelled), 2, -1):
        concept, suffix = _CONCEPT_STEMS.get(spelled[:cut], ("", -1))
        if len(spelled) - cut <= suffix:
            return concept
    return spelled


def _is_title_case(cased: Sequence[str]) -> bool:
    """Whether a headline capitalizes (nearly) every word, so capitals say nothing of names."""
    letters = [word for word in cased if word[:1].isalpha()]
    capitals = sum(word[:1].isupper() for word in letters)
    return len(letters) >= 4 and capitals >= 0.7 * len(letters)


def _read(text: str, *, headline: bool) -> list[tuple[str, bool]]:
    """The content words of `text`, each with whether it is written as a name here: a capital
    inside a sentence (not in a headline that capitalizes every word), a digit, an acronym."""
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    tokens = tokenize(text)
    capitals_tell = not (headline and _is_title_case([token.cased for token in tokens]))
    words: list[tuple[str, bool]] = []
    sentence_start = True
    for token in tokens:
        starts = sentence_start
        sentence_start = text[token.end : token.end + 2] in (". ", "? ", "! ", ": ")
        folded = token.folded
        if folded in _STOP or (folded.isdigit() and not folded.strip("0")):
            continue
        raw = latin_key(folded)
        if len(raw) < 2 and not raw.isdigit():
            continue
        cased = token.cased
        named = (
            any(ch.isdigit() for ch in raw)
            or (cased.isupper() and len(cased) > 1)
            or (capitals_tell and not starts and cased[:1].isupper())
        )
        words.append((canonical(raw), named))
    return words


def _shorter_forms(word: str) -> range:
    """The lengths of the shorter forms `word` may inflect."""
    return range(max(_MIN_PREFIX, len(word) - _MAX_SUFFIX), len(word))


@lru_cache(maxsize=4096)
def _words(story: StoryText) -> _Words:
    read = [(_read(story.title, headline=True), TITLE)]
    if _READ_SUMMARY:
        read.append((_read(story.summary, headline=False), 1.0))
    # A word written as a name once is a name throughout: `Lavrov` opening a headline too.
    names = {word for words, _ in read for word, named in words if named}
    weights: dict[str, float] = {}
    for words, factor in read:
        for word, _ in words:
            if word in _GENERIC:
                weight = GENERIC
            elif word in ALIASES or (word in names and not word.startswith("#")):
                weight = ENTITY
            else:
                weight = PLAIN
            weights[word] = max(weights.get(word, 0.0), weight * factor)
    forms = {word: frozenset(word[:cut] for cut in _shorter_forms(word)) for word in weights}
    return _Words(
        weights=weights,
        total=sum(weights.values()),
        content=sum(weight for word, weight in weights.items() if word not in _GENERIC),
        keys=frozenset(weights),
        stems=frozenset(weights).union(*forms.values()),
        forms=forms,
        places=PLACES.intersection(weights),
        call=any(word == "#phone" for word, _ in read[0][0]),
        long=tuple(w for w in weights if len(w) >= _MIN_SPELLING and not w.startswith("#")),
    )


def _met_weight(a: _Words, b: _Words) -> float:
    """The weight of the words of `a` that meet a word of `b`."""
    total = 0.0
    for word, weight in a.weights.items():
        if (
            word in b.stems  # equal, or a word of b inflects it
            or not a.forms[word].isdisjoint(b.keys)  # it inflects a word of b
            or (
                len(word) >= _MIN_SPELLING
                and not word.startswith("#")
                and process.extractOne(word, b.long, scorer=fuzz.ratio, score_cutoff=SPELLING)
            )
        ):
            total += weight
    return total


def story_similarity(a: StoryText, b: StoryText) -> float:
    """How alike two stories are, 0..100 (see the module docstring)."""
    words_a, words_b = _words(a), _words(b)
    if min(words_a.content, words_b.content) < MIN_CONTENT:
        return 0.0  # too little to tell a story by: `Cuba`, `Breaking news`
    met = _met_weight(words_a, words_b) + _met_weight(words_b, words_a)
    score = 100.0 * met / (words_a.total + words_b.total)
    if words_a.places and words_b.places and words_a.places.isdisjoint(words_b.places):
        score *= PLACE_CONFLICT
    if words_a.call != words_b.call:
        score *= CALL_CONFLICT
    return score


def clear_caches() -> None:
    """Forget every text read and word spelled (for benchmarks and tests)."""
    for cached in (_words, canonical, spell):
        cached.cache_clear()


def same_story(a: StoryText, b: StoryText) -> bool:
    """Whether `a` and `b` tell the same story."""
    return story_similarity(a, b) >= THRESHOLD


def best_match(new: StoryText, candidates: Sequence[tuple[K, StoryText]]) -> K | None:
    """The key of the candidate telling the same story as `new` (the most similar), or None."""
    best_key: K | None = None
    best_score = THRESHOLD
    for key, text in candidates:
        score = story_similarity(new, text)
        if score >= best_score:
            best_key, best_score = key, score
    return best_key
