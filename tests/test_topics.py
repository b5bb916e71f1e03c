"""Topic flagging: the shipped rules over the seeds, the matching semantics, config validation, and a quality
floor on our labels of the dev corpora (../shared/corpora)."""

from __future__ import annotations

import pickle
import time
import unicodedata
from pathlib import Path

import pydantic
import pytest
import yaml
from conftest import load_bench

from crawler.models import Flags
from crawler.topics import (
    SOURCE_EVIDENCE,
    SOURCE_SCORE,
    TopicDef,
    check_topic_refs,
    compile_topics,
    evaluate_topics,
    flag_topics,
    fold,
)

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"


def shipped_defs() -> dict[str, TopicDef]:
    data = yaml.safe_load((ROOT / "config" / "topics.yaml").read_text(encoding="utf-8"))
    return {name: TopicDef.model_validate(d) for name, d in data["topics"].items()}


def flags(text: str, title: str = "", source_topics: tuple[str, ...] = (), **defs: dict) -> Flags:
    """Flags for one article under the topics given as keyword arguments, written as in topics.yaml."""
    matcher = compile_topics({name: TopicDef.model_validate(d) for name, d in defs.items()})
    return flag_topics(title, text, matcher, source_topics)


def terms(result: Flags) -> dict[str, list[str]]:
    """Per topic, the evidence's terms in order."""
    return {topic: [e["term"] for e in found] for topic, found in result.evidence.items()}


# --- the shipped topics ------------------------------------------------------------------------------------


def test_shipped_topics_are_valid_and_complete() -> None:
    defs = shipped_defs()
    assert check_topic_refs(defs) == []
    required = {"dprk", "latin_america", "russia", "us_hegemony", "south_south", "sanctions", "military"}
    assert required <= set(defs)
    assert defs["dprk_latam"].all_topics == ["dprk", "latin_america"]


def test_every_shipped_term_matches_itself() -> None:
    # Catches terms that can never match (punctuation, scripts) whatever the article says.
    terms = {t.replace("*", "") for t in shipped_terms()}
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
    ("title", "text", "topic"),
    [
        ("", "Ким Чен Ын принял делегацию в Пхеньяне.", "dprk"),
        ("", "Делегация КНДР прибыла в Москву из Пхеньяна.", "dprk"),
        ("", "북한의 외무성 대변인은 평양에서 담화를 발표했다.", "dprk"),
        ("", "La delegación de Corea del Norte llegó a Caracas desde Pionyang.", "dprk"),
        ("", "A delegação da Coreia do Norte chegou a Havana vinda de Pyongyang.", "dprk"),
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
    assert terms(flags("the G77 and G 77", g={"any": ["G-77"]})) == {"g": ["G-77"]}
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
    assert terms(flags("Cuba, the embargo and Washington", c=rule)) == {
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
    assert terms(flags("DPRK and Cuba", **defs)) == {
        "both": ["@dprk", "@latam"],
        "both_no_sport": ["@both"],
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
    source = {"term": SOURCE_EVIDENCE, "count": 1, "sentence": ""}
    assert result.evidence["dprk"] == [source]
    assert result.evidence["kcna"] == [source]  # a source topic need not be defined
    assert terms(result)["both"] == ["@dprk", "@latam"]
    assert result.scores["kcna"] == SOURCE_SCORE
    # A source topic whose terms also occur keeps them as evidence, after the marker.
    assert terms(flags("DPRK", source_topics=("dprk",), **defs))["dprk"] == [SOURCE_EVIDENCE, "DPRK"]


def test_evidence_is_terms_as_written_in_config_order() -> None:
    rule = {"any": ["North Korea", "Pyongyang", "Kim Jong-un", "DPRK"]}
    result = flags("kim jong un in PYONGYANG, pyongyang; the dprk.", nk=rule)
    sentence = "kim jong un in PYONGYANG, pyongyang; the dprk."
    assert result == Flags(
        topics=("nk",),
        evidence={
            "nk": [
                {"term": "Pyongyang", "count": 2, "sentence": sentence, "where": "text"},
                {"term": "Kim Jong-un", "count": 1, "sentence": sentence, "where": "text"},
                {"term": "DPRK", "count": 1, "sentence": sentence, "where": "text"},
            ]
        },
        scores={"nk": 4.0},
    )


def counts(result: Flags) -> dict[str, list[tuple[str, int, str]]]:
    """Per topic, (term, count, where) of its evidence."""
    return {t: [(e["term"], e["count"], e["where"]) for e in found] for t, found in result.evidence.items()}


def test_terms_of_one_list_that_overlap() -> None:
    # One list matches as one alternation of its terms would: leftmost first, without overlaps, and at one
    # place the first term in config order wins ("Kim" takes "Kim Jong-un"'s place, the rest is no match).
    text = "Kim Jong-un met Kim Yo-jong"
    assert counts(flags(text, nk={"any": ["Kim", "Kim Jong-un"]})) == {"nk": [("Kim", 2, "text")]}
    assert counts(flags(text, nk={"any": ["Kim Jong-un", "Kim"]})) == {
        "nk": [("Kim Jong-un", 1, "text"), ("Kim", 1, "text")]
    }
    # A term inside a longer match of its own list does not count there; in another topic's list it does.
    text = "North Korea and South Korea"
    result = flags(text, nk={"any": ["Korea", "North Korea"]})
    assert counts(result) == {"nk": [("Korea", 1, "text"), ("North Korea", 1, "text")]}
    result = flags(text, nk={"any": ["North Korea"]}, k={"any": ["Korea"]})
    assert counts(result) == {"k": [("Korea", 2, "text")], "nk": [("North Korea", 1, "text")]}
    assert result.scores == {"k": 2.0, "nk": 1.0}
    # Two spellings of one term (the same once folded): the first is the evidence, and "Mexico" is the first
    # alternative where "Mexico City" starts too.
    result = flags("Mexico, MÉXICO and México City", mx={"any": ["México", "Mexico", "Mexico City"]})
    assert counts(result) == {"mx": [("México", 3, "text")]}
    # Unspaced scripts: "北朝鮮" matches where it starts, "朝鮮" inside it does not count again.
    result = flags("北朝鮮と朝鮮半島、北朝鮮", nk={"any": ["朝鮮", "北朝鮮"]})
    assert counts(result) == {"nk": [("朝鮮", 1, "text"), ("北朝鮮", 2, "text")]}


def test_terms_with_an_optional_first_character_or_at_the_end_of_the_text() -> None:
    rule = {"any": ["'s-Hertogenbosch"]}  # the apostrophe may be missing: the term can start at the "s"
    assert counts(flags("from ’s-Hertogenbosch, or s Hertogenbosch", nl=rule)) == {
        "nl": [("'s-Hertogenbosch", 2, "text")]
    }
    result = flags("the north of Project X", title="X", x={"any": ["X"]})
    assert counts(result) == {"x": [("X", 2, "title")]}
    assert result.scores == {"x": 4.0}


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
    assert "a topic needs `any:`, `all:`, `near:` or `all_topics:`" in msg


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("", "a term must be a non-empty string"),
        ("   ", "a term must be a non-empty string"),
        ("*", "`*` is only allowed at the end of a word"),
        ("--", "a term needs at least one letter or digit"),
        ("Ku*ba", "`*` is only allowed at the end of a word"),
        ("re:kim(jong", "bad regular expression 'kim(jong': missing ), unterminated subpattern"),
        ("re:[", "bad regular expression '['"),
        ("re:a)|(b", "bad regular expression 'a)|(b'"),
        ("re:(?:x)*", "regular expression '(?:x)*' matches the empty text"),
        ("re:", "`re:` needs a regular expression after it"),
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


# --- regular expressions, proximity, where, ignore, scores -----------------------------------------------


def test_regex_terms_run_on_folded_text_ignoring_case() -> None:
    rule = {"any": [r"re:kim\s+jong[\s-]?un"]}
    assert flags("KIM JONG-UN and Kim Jong Un", nk=rule).evidence["nk"][0]["count"] == 2
    assert flags("Kim Jong Il", nk=rule).topics == ()
    # Upper case in a pattern, and non-ASCII letters, which are folded like the text.
    assert flags("NICOLAS MADURO", v={"any": [r"re:Nicolás\s+Maduro"]}).topics == ("v",)
    assert flags("le président Nicolás Maduro", v={"any": [r"re:nicolás\s+maduro"]}).topics == ("v",)
    # Escapes keep their meaning: \S is not \s.
    assert flags("G-77", g={"any": [r"re:g\S77"]}).topics == ("g",)
    assert flags("G 77", g={"any": [r"re:g\S77"]}).topics == ()


def test_regex_terms_cannot_match_inside_words() -> None:
    rule = {"any": [r"re:put[a-z]n"]}
    assert flags("Putin spoke", r=rule).topics == ("r",)
    for text in ["cloud computing", "computin", "Putinism", "xputin"]:
        assert flags(text, r=rule).topics == (), text
    assert flags("Putinism", r={"any": [r"re:putin\w*"]}).topics == ("r",)  # endings when the pattern says so
    # A match that starts or ends on punctuation is at a word edge already.
    assert flags("shipbuilding·조선", k={"any": [r"re:[·/]\s*조선"]}).topics == ("k",)


def test_regex_terms_are_counted_with_the_plain_ones_once() -> None:
    rule = {"any": ["North Korea", r"re:north\s+korea"]}
    assert flags("North Korea", nk=rule).evidence["nk"] == [
        {"term": "North Korea", "count": 1, "sentence": "North Korea", "where": "text"}
    ]


def test_near_simple_form() -> None:
    rule = {"any": ["Kim"], "near": ["Kim", "missile*"], "within": 3}
    assert flags("Kim watched the missile launch", nk=rule).topics == ("nk",)  # two words between
    assert flags("Kim was at home. Later, far away, someone saw a missile", nk=rule).topics == ()
    assert flags("missiles, said Kim", nk=rule).topics == ("nk",)  # in either order
    assert flags("Kim alone", nk=rule).topics == ()
    assert TopicDef.model_validate({"near": ["a", "b"]}).near[0].terms == ["a", "b"]


def test_near_default_distance_is_ten_words() -> None:
    rule = {"near": ["Cuba", "embargo"]}
    assert flags("Cuba " + "w " * 10 + "embargo", c=rule).topics == ("c",)
    assert flags("Cuba " + "w " * 11 + "embargo", c=rule).topics == ()


def test_near_clauses_each_must_hold() -> None:
    rule = {
        "near": [
            {"terms": ["North Korea", "Venezuela"], "within": 2},
            {"terms": ["oil", "sanctions", "tanker*"], "within": 4},
        ]
    }
    text = "North Korea and Venezuela agreed. A tanker carried oil despite sanctions."
    assert flags(text, x=rule).topics == ("x",)
    assert flags("North Korea and Venezuela agreed. Oil prices rose.", x=rule).topics == ()
    # Three terms: all in one stretch with at most `within` other words between them.
    assert flags("North Korea and Venezuela. oil a b c d e tankers f sanctions", x=rule).topics == ()


def test_near_phrases_count_their_own_words_apart() -> None:
    rule = {"near": [{"terms": ["Kim Jong-un", "Nicolás Maduro"], "within": 1}]}
    assert flags("Kim Jong Un met Nicolas Maduro", x=rule).topics == ("x",)
    assert flags("Kim Jong Un later met Nicolas Maduro", x=rule).topics == ()


def test_in_title_or_text() -> None:
    title_only = {"any": ["Cuba"], "in": ["title"]}
    assert flags("Cuba", title="Weather", c=title_only).topics == ()
    assert flags("Weather", title="Cuba today", c=title_only).topics == ("c",)
    text_only = {"any": ["Cuba"], "in": ["text"]}
    assert flags("Weather", title="Cuba today", c=text_only).topics == ()
    assert flags("Cuba", title="Weather", c=text_only).topics == ("c",)
    # A phrase cannot run from the title into the text.
    assert flags("Korea and more", title="A talk on North", nk={"any": ["North Korea"]}).topics == ()


def test_ignore_phrases_hide_the_terms_inside_them() -> None:
    rule = {"any": ["Mexico"], "ignore": ["New Mexico", "Gulf of Mexico"]}
    assert flags("Wildfires in New Mexico and the Gulf of Mexico", m=rule).topics == ()
    assert flags("New Mexico borders Mexico", m=rule).evidence["m"][0]["count"] == 1
    assert flags("Cuba Gooding Jr. stars", c={"any": ["Cuba"], "ignore": ["Cuba Gooding*"]}).topics == ()


def test_scores_weigh_the_title_more() -> None:
    rule = {"any": ["Cuba", "Havana"]}
    assert flags("Cuba and Havana", c=rule).scores == {"c": 2.0}
    assert flags("Havana", title="Cuba today", c=rule).scores == {"c": 4.0}  # 3 for the title, 1 for the text


def test_composite_score_is_its_weakest_part() -> None:
    defs = {"a": {"any": ["DPRK"]}, "b": {"any": ["Cuba"]}, "ab": {"all_topics": ["a", "b"]}}
    result = flags("DPRK, DPRK, DPRK and Cuba", title="DPRK", **defs)
    assert result.scores == {"a": 6.0, "ab": 1.0, "b": 1.0}
    part = result.evidence["ab"][0]
    assert part == {"term": "@a", "count": 4, "sentence": "DPRK", "where": "title"}


def test_source_topics_score_at_least_the_source_score() -> None:
    defs = {"dprk": {"any": ["DPRK"]}}
    assert flags("nothing", source_topics=("dprk",), **defs).scores == {"dprk": SOURCE_SCORE}
    assert flags("DPRK " * 5, source_topics=("dprk",), **defs).scores == {"dprk": 5.0}


# --- evidence sentences -------------------------------------------------------------------------------------


def test_evidence_quotes_the_first_sentence_from_the_original_text() -> None:
    text = (
        "Lluvias en Caracas. EL PRESIDENTE NICOLÁS MADURO habló el lunes. Luego Nicolás Maduro viajó.\n\n"
        "Otro párrafo."
    )
    [found] = flags(text, v={"any": ["Nicolas Maduro"]}).evidence["v"]
    assert found == {
        "term": "Nicolas Maduro",
        "count": 2,
        "sentence": "EL PRESIDENTE NICOLÁS MADURO habló el lunes.",
        "where": "text",
    }


def test_evidence_offsets_survive_folding_that_changes_length() -> None:
    # ß folds to "ss", "ﬁ" to "fi", a soft hyphen and a zero-width space vanish, an accent may come as a
    # separate combining character: the sentence quoted must still be the right one, unchanged.
    text = "Straße\u00ad\u200b ﬁnal. Die Straße nach Pjo\u0301ngjang ist lang. Danach Schluss."
    [found] = flags(text, nk={"any": ["Pjongjang"]}).evidence["nk"]
    assert found["sentence"] == "Die Straße nach Pjóngjang ist lang."
    assert fold("Straße\u00ad ﬁ") == "strasse fi"


def test_evidence_sentence_split_is_not_fooled_by_abbreviations() -> None:
    text = "The U.S. Navy sent ships. Then the U.S. embargo on Cuba was tightened by Gen. Smith. End."
    [found] = flags(text, c={"any": ["Cuba"]}).evidence["c"]
    assert found["sentence"] == "Then the U.S. embargo on Cuba was tightened by Gen. Smith."


def test_evidence_sentences_in_the_title_and_in_cjk() -> None:
    [found] = flags("Nothing here.", title="Cuba: the news", c={"any": ["Cuba"]}).evidence["c"]
    assert (found["sentence"], found["where"]) == ("Cuba: the news", "title")
    [found] = flags("天气很好。北朝鮮のミサイル発射。其他。", nk={"any": ["北朝鮮"]}).evidence["nk"]
    assert found["sentence"] == "北朝鮮のミサイル発射。"


def test_long_sentences_are_cut_around_the_match() -> None:
    text = "Words " * 100 + "then Cuba appears " + "and more words " * 60 + "end."
    [found] = flags(text, c={"any": ["Cuba"]}).evidence["c"]
    assert len(found["sentence"]) <= 310
    assert "Cuba" in found["sentence"]
    assert found["sentence"].startswith("…") and found["sentence"].endswith("…")


# --- explaining ---------------------------------------------------------------------------------------------


def test_evaluate_names_every_failing_condition() -> None:
    defs = {
        "a": {"any": ["Cuba", "Havana"], "min_count": 3, "none": ["baseball"], "all": ["embargo"]},
        "b": {"near": ["Kim", "missile"], "within": 2},
        "ab": {"all_topics": ["a", "b"]},
    }
    matcher = compile_topics({k: TopicDef.model_validate(v) for k, v in defs.items()})
    text = "Cuba plays baseball. Kim watched the long and loud missile test."
    verdicts = {v.name: v for v in evaluate_topics("", text, matcher)}
    assert verdicts["a"].problems[0].startswith("min_count not reached (1 of 3")
    assert "`all` term missing: 'embargo'" in verdicts["a"].problems
    assert any(p.startswith("`none` term present: 'baseball' (1x)") for p in verdicts["a"].problems)
    assert verdicts["b"].problems == [
        "proximity not satisfied: near ['Kim', 'missile'] within 2: closest 5 words apart"
    ]
    assert verdicts["ab"].problems == [
        "composite part missing: a is not flagged",
        "composite part missing: b is not flagged",
    ]
    # And what flag_topics decides agrees with it.
    assert flag_topics("", text, matcher).topics == ()


# --- no flag from inside a word, for every shipped term -----------------------------------------------------


def _edge_letter(c: str, suffix: bool) -> str | None:
    """A letter of the same script to glue to a term's edge character; None where words have no edges."""
    name = unicodedata.name(c, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
        return None
    if "\uac00" <= c <= "\ud7a3":
        return "업" if suffix else "남"  # 업 is no particle: 조선업 (shipbuilding), 남조선
    if name.startswith("CYRILLIC"):
        return "ж"
    return "x"


def shipped_terms() -> list[str]:
    defs = shipped_defs()
    found = {t for d in defs.values() for t in [*d.any_, *d.all_, *d.none, *d.ignore]}
    found |= {t for d in defs.values() for clause in d.near for t in clause.terms}
    return sorted(t for t in found if not t.startswith("re:"))


def test_no_shipped_term_matches_inside_a_longer_word() -> None:
    terms_ = shipped_terms()
    matcher = compile_topics({f"t{i}": TopicDef(any_=[t]) for i, t in enumerate(terms_)})
    checked = 0
    for i, term in enumerate(terms_):
        bare = term.replace("*", "")
        variants = []
        before = _edge_letter(bare[0], suffix=False)
        if before:
            variants.append(before + bare)  # "computing" is not Putin: no match that starts inside a word
        after = _edge_letter(bare[-1], suffix=True)
        if after and not term.endswith("*"):  # a trailing * asks for word endings
            variants.append(bare + after)
        for text in variants:
            found = flag_topics("", f"{text} {text}. {text}", matcher).topics
            assert f"t{i}" not in found, f"{term!r} matched inside {text!r}"
            checked += 1
    assert checked > 600


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
        "Scuba divers in the Gulf of Mexico met Cuba Gooding Jr. and a Korean-American chef from Koreatown.",
        "조선 3사와 조선·해운 업계, 해운·조선 산업이 조선 시대 유적을 찾았다.",
        "Мексиканский перец чили и ракетка; Нью-Мексико; скорее всего.",
        "Brazilian jiu-jitsu and Brazil nuts; the Havana syndrome in Vienna, the Havana syndrome again.",
    ],
    ids=[
        "kim",
        "wong-kim-ark",
        "substrings",
        "sin-embargo",
        "south-korea",
        "hangul-prefixes",
        "sud-sudan",
        "scuba-gooding",
        "shipbuilding",
        "russian-false-friends",
        "brazil-havana",
    ],
)
def test_shipped_topics_ignore_false_friends(text: str, shipped_matcher) -> None:
    assert flag_topics("", text, shipped_matcher).topics == ()


def test_shipped_topics_are_fast(shipped_matcher) -> None:
    # A generous bound (the bench measures ~3 ms for a 4,600-character article): catches a pathological
    # regex, not a slow machine.
    text = (ROOT / "seeds").glob("001_*.txt").__next__().read_text(encoding="utf-8") * 3
    start = time.perf_counter()
    for _ in range(5):
        flag_topics("", text, shipped_matcher)
    assert (time.perf_counter() - start) / 5 < 0.25


# --- quality: our labels of the dev corpora, and our own test articles ------------------------------------

# Measured with bench/topic_quality.py (items borderline for a topic left out); floors a little below, so a
# change to topics.yaml or the matcher that loses precision fails here. Where a topic has 8 or more
# positives, precision and recall must be at least 0.9 (issue 4); with fewer, one item moves the figure a lot,
# so precision alone is pinned.
CORPUS_FLOORS = {  # topic: (precision, recall); measured (positives)
    "dprk": (0.95, 0.0),  # 1.000, 1.000 (1): any false positive fails
    "latin_america": (0.95, 0.0),  # 1.000, 1.000 (5)
    "russia": (0.95, 0.95),  # 1.000, 1.000 (9)
    "us_hegemony": (0.95, 0.0),  # 1.000, 0.500 (4)
    "south_south": (0.95, 0.0),  # nothing flagged, nothing to flag
    "sanctions": (0.95, 0.0),  # 1.000, 1.000 (2)
    "military": (0.92, 0.95),  # 0.960, 1.000 (24)
}
ARTICLE_FLOORS = {  # on tests/data/topics/articles.yaml
    "dprk": (0.95, 0.95),  # 1.000, 1.000 (19)
    "latin_america": (0.95, 0.95),  # 1.000, 1.000 (25)
    "dprk_latam": (0.95, 0.95),  # 1.000, 1.000 (7)
    "russia": (0.95, 0.95),  # 1.000, 1.000 (7)
    "military": (0.95, 0.95),  # 1.000, 1.000 (7)
    "sanctions": (0.95, 0.8),  # 1.000, 0.857 (7)
    "us_hegemony": (0.95, 0.95),  # 1.000, 1.000 (4)
    "south_south": (0.95, 0.95),  # 1.000, 1.000 (1)
}
REQUIRED = 0.9  # for topics with MEANINGFUL positives or more
MEANINGFUL = 8


def _bench():
    return load_bench("topic_quality")


@pytest.fixture(scope="module")
def bench():
    return _bench()


@pytest.fixture(scope="module")
def corpus_scores(bench):
    if not (CORPORA / "topic-labels.json").is_file():
        pytest.skip(f"no labelled corpora at {CORPORA} (../shared/corpora beside the repo)")
    scores, _ = bench.score(bench.load_matcher(), CORPORA)
    return scores


@pytest.fixture(scope="module")
def article_scores(bench):
    scores, _ = bench.score_articles(bench.load_matcher())
    return scores


@pytest.mark.parametrize("topic", sorted(CORPUS_FLOORS))
def test_quality_floor_on_labelled_corpora(topic: str, corpus_scores) -> None:
    s = corpus_scores[topic]
    precision, recall = CORPUS_FLOORS[topic]
    if s.positives >= MEANINGFUL:
        precision, recall = max(precision, REQUIRED), max(recall, REQUIRED)
    assert s.precision >= precision, f"false positives: {s.fp}"
    assert s.recall >= recall, f"false negatives: {s.fn}"


@pytest.mark.parametrize("topic", sorted(ARTICLE_FLOORS))
def test_quality_floor_on_test_articles(topic: str, article_scores) -> None:
    s = article_scores[topic]
    precision, recall = ARTICLE_FLOORS[topic]
    if s.positives >= MEANINGFUL:
        precision, recall = max(precision, REQUIRED), max(recall, REQUIRED)
    assert s.precision >= precision, f"false positives: {s.fp}"
    assert s.recall >= recall, f"false negatives: {s.fn}"


def test_the_required_topics_have_enough_positives(corpus_scores, article_scores) -> None:
    # The 0.9 requirement must bite where issue 4 says: military and russia on the corpora, and the DPRK and
    # Latin America themes on our articles.
    assert corpus_scores["military"].positives >= MEANINGFUL
    assert corpus_scores["russia"].positives >= MEANINGFUL
    assert article_scores["dprk"].positives >= MEANINGFUL
    assert article_scores["latin_america"].positives >= MEANINGFUL


ARTICLES = yaml.safe_load((ROOT / "tests" / "data" / "topics" / "articles.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("article", ARTICLES["articles"], ids=lambda a: a["id"])
def test_test_articles_on_the_main_themes(article: dict, shipped_matcher) -> None:
    # Each article carries its labels; the themes our users follow must come out right on every one.
    result = flag_topics(article["title"], article["text"], shipped_matcher)
    for topic in ("dprk", "latin_america", "dprk_latam"):
        assert (topic in result.topics) == (topic in article["labels"]), (topic, result.evidence.get(topic))


def test_near_within_and_in_are_validated() -> None:
    [(loc, msg)] = errors({"near": ["a", {"terms": ["b", "c"]}]})
    assert loc == ("near",)
    assert "not a mix" in msg
    [(_, msg)] = errors({"any": ["a"], "within": 3})
    assert "`within:` is the distance of `near:` terms" in msg
    [(loc, _)] = errors({"near": [{"terms": ["a"]}]})
    assert loc == ("near", 0, "terms")
    [(loc, _)] = errors({"near": [{"terms": ["a", "b"], "within": -1}]})
    assert loc == ("near", 0, "within")
    [(loc, msg)] = errors({"near": ["a", "re:("]})
    assert loc == ("near", 0, "terms", 1)
    assert "bad regular expression '('" in msg
    [(loc, _)] = errors({"any": ["a"], "in": ["body"]})
    assert loc == ("in", 0)
    [(loc, _)] = errors({"any": ["a"], "in": []})
    assert loc == ("in",)
    [(loc, _)] = errors({"any": ["a"], "ignore": ["re:x*"]})
    assert loc == ("ignore", 0)
