"""Topic flagging: the shipped rules over the seeds, the matching semantics, config validation, and a quality
floor on our labels of the dev corpora (../shared/corpora)."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import pydantic
import pytest
import yaml

from crawler.models import Flags
from crawler.topics import SOURCE_EVIDENCE, TopicDef, check_topic_refs, compile_topics, flag_topics

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


def shipped_defs() -> dict[str, TopicDef]:
    data = yaml.safe_load((ROOT / "config" / "topics.yaml").read_text(encoding="utf-8"))
    return {name: TopicDef.model_validate(d) for name, d in data["topics"].items()}


def flags(text: str, title: str = "", source_topics: tuple[str, ...] = (), **defs: dict) -> Flags:
    """Flags for one article under the topics given as keyword arguments, written as in topics.yaml."""
    matcher = compile_topics({name: TopicDef.model_validate(d) for name, d in defs.items()})
    return flag_topics(title, text, matcher, source_topics)


# --- the shipped topics ------------------------------------------------------------------------------------


def test_shipped_topics_are_valid_and_complete() -> None:
    defs = shipped_defs()
    assert check_topic_refs(defs) == []
    required = {"dprk", "latin_america", "russia", "us_hegemony", "south_south", "sanctions", "military"}
    assert required <= set(defs)
    assert defs["dprk_latam"].all_topics == ["dprk", "latin_america"]


def test_every_shipped_term_matches_itself() -> None:
    # Catches terms that can never match (punctuation, scripts) whatever the article says.
    terms = {t.replace("*", "") for d in shipped_defs().values() for t in [*d.any_, *d.all_, *d.none]}
    matcher = compile_topics({f"t{i}": TopicDef(any_=[t]) for i, t in enumerate(sorted(terms))})
    for i, term in enumerate(sorted(terms)):
        assert f"t{i}" in flag_topics("", f"({term}) ", matcher).topics, term


SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
EXPECTED = {  # seed number -> (topics it must have, topics it must not have); issue 2, point 3
    "000": ({"latin_america", "dprk", "dprk_latam"}, set()),
    "001": ({"latin_america", "dprk", "dprk_latam"}, set()),
    "002": ({"latin_america", "dprk", "south_south"}, set()),
    "003": ({"latin_america", "dprk", "dprk_latam"}, set()),
    "004": ({"latin_america", "russia"}, {"dprk", "dprk_latam"}),
}


@pytest.fixture(scope="module")
def shipped_matcher():
    return compile_topics(shipped_defs())


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name[:3])
def test_shipped_topics_over_seeds(seed: Path, shipped_matcher) -> None:
    title, _, text = seed.read_text(encoding="utf-8").partition("\n")
    result = flag_topics(title, text.lstrip("\n"), shipped_matcher)
    must, must_not = EXPECTED[seed.name[:3]]
    assert must <= set(result.topics), result.evidence
    assert not must_not & set(result.topics), result.evidence


def test_all_seeds_are_covered() -> None:
    assert sorted(p.name[:3] for p in SEEDS) == sorted(EXPECTED)


@pytest.mark.parametrize(
    "text",
    [
        "Kim Kardashian and Kim Clijsters met Yevgeny Kim.",
        "The Wong Kim Ark case is about birthright citizenship.",
        "Cloud computing reaches New Mexico; Liz Truss visits Prussia.",
        "Sin embargo, el incendio sigue activo.",
        "South Korea's Samsung unveiled a phone in Seoul; a Korean blog leaked it.",
        "조선업계는 북한산 등산로 근처에서 회의를 열었다.",  # shipbuilding; Bukhansan, a mountain in Seoul
        "Spanien, Japan und Süd-Sudan scheiterten.",
    ],
    ids=["kim", "wong-kim-ark", "substrings", "sin-embargo", "south-korea", "hangul-prefixes", "sud-sudan"],
)
def test_shipped_topics_ignore_false_friends(text: str, shipped_matcher) -> None:
    assert flag_topics("", text, shipped_matcher).topics == ()


@pytest.mark.parametrize(
    ("title", "text", "topic"),
    [
        ("", "Ким Чен Ын принял делегацию в Пхеньяне.", "dprk"),
        ("", "Делегация КНДР прибыла в Москву.", "dprk"),
        ("", "북한의 외무성 대변인은 평양에서 담화를 발표했다.", "dprk"),
        ("", "La delegación de Corea del Norte llegó a Caracas.", "dprk"),
        ("", "A delegação da Coreia do Norte chegou a Havana.", "dprk"),
        ("", "El COREA DEL NORTE y la República Popular Democrática de Corea", "dprk"),
        ("", "Respected Comrade Kim Jong Un received a message.", "dprk"),
        ("DPRK delegation visits Venezuela", "The delegation arrived in Caracas on Monday.", "latin_america"),
        ("", "Путин заявил о связях России с Латинской Америкой, Венесуэлой и Кубой.", "latin_america"),
        ("", "Путин заявил о связях России с Латинской Америкой. В Кремле...", "russia"),
        ("", "Los países del G77 y los BRICS impulsan la cooperación Sur-Sur.", "south_south"),
    ],
    ids=lambda v: v if v in {"dprk", "latin_america", "russia", "south_south"} else "",
)
def test_shipped_topics_in_several_languages(title: str, text: str, topic: str, shipped_matcher) -> None:
    assert topic in flag_topics(title, text, shipped_matcher).topics


# --- matching semantics ------------------------------------------------------------------------------------


def test_whole_words_only() -> None:
    assert flags("Los cubanos y el Cubano", cuba={"any": ["Cuba"]}).topics == ()
    assert flags("Raúl went to Cuba.", cuba={"any": ["Cuba"]}).topics == ("cuba",)
    assert flags("cloud computing", russia={"any": ["Putin"]}).topics == ()
    assert flags("Putin's visit", russia={"any": ["Putin"]}).topics == ("russia",)


def test_trailing_star_matches_word_prefix() -> None:
    rule = {"any": ["Venezuela*"]}
    assert flags("Venezuelan oil", v=rule).topics == ("v",)
    assert flags("pro-Venezuela rally", v=rule).topics == ("v",)  # a hyphen starts a word
    assert flags("AntiVenezuela", v=rule).topics == ()  # but the word must start with the term
    assert flags("в Латинской Америке", la={"any": ["Латинск* Америк*"]}).topics == ("la",)


def test_phrases_across_line_breaks_and_spaces() -> None:
    rule = {"any": ["Corea del Norte"]}
    assert flags("la Corea del\nNorte y\u00a0más", nk=rule).topics == ("nk",)
    assert flags("Corea   del \n\n  Norte", nk=rule).topics == ("nk",)
    assert flags("Corea del Sur. Norte", nk=rule).topics == ()


def test_case_and_diacritics_folding() -> None:
    assert flags("NICOLAS MADURO", v={"any": ["Nicolás Maduro"]}).topics == ("v",)
    assert flags("Nicolás Maduro", v={"any": ["nicolas maduro"]}).topics == ("v",)
    assert flags("COREA DEL NORTE", nk={"any": ["Corea del Norte"]}).topics == ("nk",)
    assert flags("BRASÍLIA e São Paulo", br={"any": ["brasilia"]}).topics == ("br",)
    assert flags("Он приехал в Кремлёвский", k={"any": ["кремлевский"]}).topics == ("k",)  # ё folds to е


def test_hyphens_and_apostrophes_are_folded() -> None:
    rule = {"any": ["Kim Yong-nam"]}
    for text in ["Kim Yong-nam", "Kim Yong\u2011nam", "Kim Yong\u2010nam", "KIM YONG NAM", "Kim Yongnam"]:
        assert flags(text, nk=rule).topics == ("nk",), text
    assert flags("the G77 and G 77", g={"any": ["G-77"]}).evidence == {"g": ["G-77"]}
    party = {"any": ["Workers' Party of Korea"]}
    assert flags("the Workers\u2019 Party of Korea", nk=party).topics == ("nk",)
    assert flags("the Workers Party of Korea", nk=party).topics == ("nk",)


def test_cyrillic() -> None:
    assert flags("Визит в КНДР, затем в Пхеньяне", nk={"any": ["КНДР"]}).topics == ("nk",)
    assert flags("Визит в Пхеньяне", nk={"any": ["Пхеньян*"]}).topics == ("nk",)
    assert flags("скорее всего", nk={"any": ["Коре*"]}).topics == ()  # not inside a word


def test_hangul_particles() -> None:
    rule = {"any": ["조선", "북한"]}
    for text in ["조선의 입장", "조선은 밝혔다", "북한에서는", "북한이 발표", "북한, 그리고", "(조선)"]:
        assert flags(text, nk=rule).topics == ("nk",), text
    # Longer words that start with the term, and words that end with it, are something else.
    for text in ["조선업 호황", "조선소", "북한산 등산", "남조선"]:
        assert flags(text, nk=rule).topics == (), text


def test_unspaced_scripts_match_inside_text() -> None:
    assert flags("北朝鮮のミサイル", nk={"any": ["北朝鮮"]}).topics == ("nk",)
    assert flags("习近平致信中拉论坛，拉美国家", la={"any": ["拉美"]}).topics == ("la",)


def test_all_terms_must_occur() -> None:
    rule = {"any": ["Cuba"], "all": ["embargo", "Washington"]}
    assert flags("Cuba and the embargo", c=rule).topics == ()
    assert flags("Cuba, the embargo and Washington", c=rule).evidence == {
        "c": ["Cuba", "embargo", "Washington"]
    }
    assert flags("embargo from Washington", only_all={"all": ["embargo", "Washington"]}).topics == (
        "only_all",
    )


def test_none_excludes() -> None:
    rule = {"any": ["Argentina"], "none": ["Davis Cup"]}
    assert flags("Argentina's president", a=rule).topics == ("a",)
    assert flags("Argentina won the Davis Cup tie", a=rule).topics == ()


def test_min_count_counts_repeats_and_the_title_twice() -> None:
    rule = {"any": ["Cuba", "Havana"], "min_count": 3}
    assert flags("Cuba and Havana", c=rule).topics == ()
    assert flags("Cuba and Havana, Cuba again", c=rule).topics == ("c",)
    assert flags("Then to Havana.", title="Delegation visits Cuba", c=rule).topics == ("c",)


def test_composite_topics() -> None:
    defs = {
        "dprk": {"any": ["DPRK"]},
        "latam": {"any": ["Cuba"]},
        "both": {"all_topics": ["dprk", "latam"]},
        "both_no_sport": {"all_topics": ["both"], "none": ["baseball"]},
    }
    assert flags("DPRK and Cuba", **defs).evidence == {
        "both": ["dprk", "latam"],
        "both_no_sport": ["both"],
        "dprk": ["DPRK"],
        "latam": ["Cuba"],
    }
    assert flags("DPRK and Cuba play baseball", **defs).topics == ("both", "dprk", "latam")
    assert flags("DPRK only", **defs).topics == ("dprk",)


def test_source_topics_are_always_set_and_feed_composites() -> None:
    defs = {"dprk": {"any": ["DPRK"], "none": ["football"]}, "latam": {"any": ["Cuba"]}}
    defs["both"] = {"all_topics": ["dprk", "latam"]}
    result = flags("Greetings to Cuba. Football.", source_topics=("dprk", "kcna"), **defs)
    assert result.topics == ("both", "dprk", "kcna", "latam")
    assert result.evidence["dprk"] == [SOURCE_EVIDENCE]
    assert result.evidence["kcna"] == [SOURCE_EVIDENCE]  # a source topic need not be defined
    assert result.evidence["both"] == ["dprk", "latam"]
    # A source topic whose terms also occur keeps them as evidence, after the marker.
    assert flags("DPRK", source_topics=("dprk",), **defs).evidence["dprk"] == [SOURCE_EVIDENCE, "DPRK"]


def test_evidence_is_terms_as_written_in_config_order() -> None:
    rule = {"any": ["North Korea", "Pyongyang", "Kim Jong-un", "DPRK"]}
    result = flags("kim jong un in PYONGYANG, pyongyang; the dprk.", nk=rule)
    assert result == Flags(topics=("nk",), evidence={"nk": ["Pyongyang", "Kim Jong-un", "DPRK"]})


def test_topics_are_sorted() -> None:
    result = flags("Cuba and the DPRK", z={"any": ["Cuba"]}, a={"any": ["DPRK"]}, m={"any": ["Cuba"]})
    assert result.topics == ("a", "m", "z")
    assert list(result.evidence) == ["a", "m", "z"]


def test_matcher_is_picklable() -> None:
    matcher = compile_topics(shipped_defs())
    copy = pickle.loads(pickle.dumps(matcher))
    text = "North Korea and Venezuela signed a military agreement in Caracas, Venezuela."
    assert flag_topics("", text, copy) == flag_topics("", text, matcher)


# --- validation --------------------------------------------------------------------------------------------


def errors(data: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(pydantic.ValidationError) as info:
        TopicDef.model_validate(data)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_yaml_keys_and_python_names() -> None:
    d = TopicDef.model_validate({"any": ["a"], "all": ["b"], "none": ["c"]})
    assert (d.any_, d.all_, d.none) == (["a"], ["b"], ["c"])
    assert TopicDef(any_=["a"]).any_ == ["a"]  # populate_by_name


def test_unknown_key_is_rejected() -> None:
    assert errors({"any": ["a"], "exclude": ["b"]}) == [(("exclude",), "Extra inputs are not permitted")]


def test_topic_needs_a_rule() -> None:
    [(_, msg)] = errors({"none": ["football"]})
    assert "a topic needs `any:`, `all:` or `all_topics:`" in msg


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("", "a term must be a non-empty string"),
        ("   ", "a term must be a non-empty string"),
        ("*", "`*` is only allowed at the end of a word"),
        ("--", "a term needs at least one letter or digit"),
        ("Ku*ba", "`*` is only allowed at the end of a word"),
        ("re:Kim\\b", "regular-expression terms (`re:`) are not supported yet"),
    ],
)
def test_bad_terms_are_rejected_with_their_position(term: str, message: str) -> None:
    [(loc, msg)] = errors({"any": ["Cuba", term]})
    assert loc == ("any", 1)
    assert message in msg


def test_terms_must_be_strings() -> None:
    [(loc, _)] = errors({"any": ["Cuba", None]})
    assert loc == ("any", 1)


def test_min_count_must_be_positive_and_needs_any() -> None:
    [(loc, _)] = errors({"any": ["a"], "min_count": 0})
    assert loc == ("min_count",)
    [(_, msg)] = errors({"all": ["a"], "min_count": 2})
    assert "`min_count:` counts the `any:` terms" in msg


def test_unknown_composite_reference_is_reported() -> None:
    defs = {"dprk": TopicDef(any_=["DPRK"]), "x": TopicDef(all_topics=["dprk", "latam"])}
    assert check_topic_refs(defs) == [("x", "all_topics: unknown topic 'latam'")]
    with pytest.raises(ValueError, match="unknown topic 'latam'"):
        compile_topics(defs)


def test_cycles_are_reported() -> None:
    defs = {
        "a": TopicDef(all_topics=["b"]),
        "b": TopicDef(all_topics=["a"]),
        "c": TopicDef(any_=["x"], all_topics=["c"]),
        "d": TopicDef(all_topics=["a"]),  # depends on a cycle but is not part of it
    }
    assert check_topic_refs(defs) == [
        ("b", "all_topics: cycle a -> b -> a"),
        ("c", "all_topics: cycle c -> c"),
    ]
    with pytest.raises(ValueError, match="cycle"):
        compile_topics(defs)


# --- quality on the labelled dev corpora -------------------------------------------------------------------

# Measured with bench/topic_quality.py (items borderline for a topic left out); floors a little below, so a
# change to topics.yaml or the matcher that loses precision fails here. Recall is pinned where there are
# enough positives to mean something.
PRECISION_FLOOR = {
    "dprk": 0.95,  # measured 1.000 (1 positive): any false positive fails
    "latin_america": 0.80,  # 0.833
    "russia": 0.95,  # 1.000
    "us_hegemony": 0.95,  # 1.000
    "south_south": 0.95,  # nothing flagged, nothing to flag
    "sanctions": 0.65,  # 0.667 (2 positives)
    "military": 0.82,  # 0.852
}
RECALL_FLOOR = {"latin_america": 0.95, "russia": 0.95, "military": 0.9}


@pytest.fixture(scope="module")
def corpus_scores():
    if not (CORPORA / "topic-labels.json").is_file():
        pytest.skip(f"no labelled corpora at {CORPORA} (../shared/corpora beside the repo)")
    path = ROOT / "bench" / "topic_quality.py"
    spec = importlib.util.spec_from_file_location("topic_quality", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    scores, _ = module.score(module.load_matcher(), CORPORA)
    return scores


@pytest.mark.parametrize("topic", sorted(PRECISION_FLOOR))
def test_quality_floor_on_labelled_corpora(topic: str, corpus_scores) -> None:
    s = corpus_scores[topic]
    assert s.precision >= PRECISION_FLOOR[topic], f"false positives: {s.fp}"
    assert s.recall >= RECALL_FLOOR.get(topic, 0.0), f"false negatives: {s.fn}"
