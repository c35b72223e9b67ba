"""Prompt templates: exact prompts and counts, or an error that says where."""
import json
import re

from hypothesis import given, settings, strategies as st
import pytest

from factory.parameters.prompts import (
    MAX_PROMPT_CHARS, PromptError, count_prompts, expand_prompts, interpolate,
)
from factory.parameters.wildcard_files import load_wildcard_file

WILDCARDS = {
    "colors": ["red", "dark blue"],
    "colors/warm": ["orange", "{light|deep} yellow"],
    "colors/cool": ["teal"],
    "animals": ["cat", "__colors__ dog"],
    "loop": ["a __loop_b__"],
    "loop_b": ["__loop__"],
    "self": ["x __self__"],
    "picky": ["y", "{2$$__picky__}"],
    "styled": ["${style} hat"],
    "empty": ["", "  "],
    "priced": ["{$5|$$10}"],
    "broken": ["fine", "red {sky"],
    "lost": ["__nowhere__"],
    "weighted": ["0::never", "always"],
}


def expand(template: str, **options) -> list[str]:
    options.setdefault("limit", 1000)
    return expand_prompts(template, WILDCARDS, **options)


def test_variants_give_every_option_in_order():
    assert expand("a {red|blue} {kite|ball}") == [
        "a red kite", "a red ball", "a blue kite", "a blue ball"]
    assert count_prompts("a {red|blue} {kite|ball}", WILDCARDS) == 4


def test_nested_variants_add_up():
    assert expand("{a|{b|c}|d}") == ["a", "b", "c", "d"]


def test_weights_steer_random_mode_only():
    assert expand("{1::a|0::b}") == ["a", "b"]
    assert expand("{1::a|0::b}", mode="random", limit=5, seed=3) == ["a"] * 5


def test_choose_n_gives_combinations_not_permutations():
    assert expand("{2$$a|b|c}") == ["a,b", "a,c", "b,c"]
    assert count_prompts("{2$$a|b|c}", WILDCARDS) == 3


def test_choose_n_with_separator_and_range():
    assert expand("{2$$ and $$a|b|c}") == ["a and b", "a and c", "b and c"]
    assert expand("{1-2$$a|b|c}") == ["a", "b", "c", "a,b", "a,c", "b,c"]


@pytest.mark.parametrize("template,message", [
    ("{3$$a|b}", "asks for 3 picks but has only 2"),
    ("{99999$$a|b}", "asks for 99999 picks"),
    ("{1-5$$a|b}", "asks for 1-5 picks"),
    ("{0$$a|b}", "pick at least 1"),
    ("{|}", "more than one empty option"),
])
def test_choose_n_and_empty_options_are_refused_not_clamped(template, message):
    with pytest.raises(PromptError, match=re.escape(message)):
        count_prompts(template, WILDCARDS)


def test_choose_n_multiplies_nested_options():
    assert count_prompts("{2$$a|{b|c}|d}", WILDCARDS) == 5
    assert expand("{2$$a|{b|c}|d}") == ["a,b", "a,c", "a,d", "b,d", "c,d"]


def test_repeated_options_each_give_a_prompt():
    assert expand("{a|a}") == ["a", "a"]


def test_wildcard_gives_its_values_in_written_order():
    assert expand("__colors__") == ["red", "dark blue"]


def test_nested_wildcard_name_and_glob():
    assert expand("__colors/warm__") == ["orange", "light yellow",
                                         "deep yellow"]
    assert expand("__colors/*__") == ["orange", "light yellow", "deep yellow",
                                      "teal"]
    assert count_prompts("__colors/*__", WILDCARDS) == 4


def test_wildcard_values_expand_other_wildcards():
    assert expand("a __animals__") == [
        "a cat", "a red dog", "a dark blue dog"]


def test_choose_n_over_a_wildcard_picks_its_values():
    # Two values, the second a variant: picks never pair a value with itself.
    assert expand("{2$$__colors/warm__}") == [
        "orange,light yellow", "orange,deep yellow"]


def test_weighted_wildcard_values_are_listed_once_and_sampled_by_weight():
    assert expand("__weighted__") == ["never", "always"]
    assert expand("__weighted__", mode="random", limit=4, seed=1) == [
        "always"] * 4


def test_random_part_gives_one_value_per_prompt_in_combinatorial_mode():
    prompts = expand("{~a|b} {x|y}", seed=7)
    assert len(prompts) == 2
    assert count_prompts("{~a|b} {x|y}", WILDCARDS) == 2
    assert [p[2:] for p in prompts] == ["x", "y"]


def test_random_mode_is_deterministic_from_its_seed():
    first = expand("{a|b|c} __colors/*__", mode="random", limit=6, seed=11)
    again = expand("{a|b|c} __colors/*__", mode="random", limit=6, seed=11)
    assert first == again
    assert len(first) == 6
    assert set(first) <= set(expand("{a|b|c} __colors/*__"))


def test_random_mode_count_is_what_was_asked_for():
    assert count_prompts("{a|b}", WILDCARDS, "random", limit=7) == 7


def test_empty_template_is_one_empty_prompt():
    assert expand("") == [""]
    assert count_prompts("", WILDCARDS) == 1


def test_tokens_are_read_before_variants():
    tokens = {"style": "watercolor"}
    assert expand("{${style}|plain} kite", tokens=tokens) == [
        "watercolor kite", "plain kite"]


def test_token_values_are_inserted_verbatim():
    tokens = {"note": "{odd}|$x #1 __a__"}
    assert expand("{${note}|b}", tokens=tokens) == ["{odd}|$x #1 __a__", "b"]


def test_token_can_name_a_wildcard():
    tokens = {"kind": "colors/warm"}
    assert count_prompts("__${kind}__", WILDCARDS, tokens=tokens) == 3


def test_dollar_inside_a_variant_is_literal():
    assert expand("{$5|$$10} a piece") == ["$5 a piece", "$10 a piece"]
    assert expand("__priced__") == ["$5", "$10"]


def test_escaped_braces_and_bars_are_literal():
    assert expand("a \\{curly\\} word") == ["a {curly} word"]
    assert expand("{a\\|b|c}") == ["a|b", "c"]


def test_hash_and_percent_are_literal_text():
    assert expand("photo #1, 100% {red|blue}") == [
        "photo #1, 100% red", "photo #1, 100% blue"]


def test_single_option_braces_are_refused_with_a_caret():
    with pytest.raises(PromptError) as caught:
        expand("a {curly} word")
    assert str(caught.value) == (
        "prompt, column 3: braces around 'curly' hold one option and would "
        "vanish; write \\{ and \\} for literal braces, or '|' between options"
        "\n  a {curly} word\n    ^")


def test_unclosed_brace_names_its_column():
    with pytest.raises(PromptError, match=r"^prompt, column 7: '\{' is never "
                                          r"closed"):
        expand("a red {kite|ball")


def test_unmatched_closing_brace_names_its_column():
    with pytest.raises(PromptError, match=r"column 6: '\}' has no matching"):
        expand("{a|b}} c")


def test_unclosed_wildcard_is_a_syntax_error_with_column():
    with pytest.raises(PromptError, match=r"column 3: '__' opens a wildcard "
                                          r"that is never closed"):
        expand("a __ b")


def test_error_on_a_later_line_names_line_and_column():
    with pytest.raises(PromptError, match=r"^negative_prompt, line 2, column "
                                          r"4: '\{' is never closed \(write \\\{ "
                                          r"for a literal '\{'\)\n  ab \{c\n"
                                          r"     \^$"):
        expand("x\nab {c", field="negative_prompt")


def test_column_counts_the_original_text_after_a_token():
    with pytest.raises(PromptError, match=r"column 10: '__' opens"):
        expand("${style} __x", tokens={"style": "a much longer value"})


def test_undefined_token_lists_the_defined_ones():
    with pytest.raises(PromptError, match=r"column 3: undefined token "
                                          r"\$\{syle\}; defined tokens: "
                                          r"project, style"):
        expand("a ${syle}", tokens={"style": "x", "project": "p"})


def test_library_variables_are_not_tokens():
    with pytest.raises(PromptError, match=r"'\$\{x=red\}' is not a token"):
        expand("${x=red} ${x}")


def test_unclosed_token_is_an_error():
    with pytest.raises(PromptError, match=r"column 3: '\$\{' is never closed"):
        expand("a ${style")


def test_unknown_wildcard_suggests_close_names():
    with pytest.raises(PromptError, match=r"^unknown wildcard __colrs__; did "
                                          r"you mean __colors__"):
        expand("__colrs__")


def test_unknown_wildcard_inside_a_value_says_where_it_is_used():
    with pytest.raises(PromptError, match=r"^unknown wildcard __nowhere__ "
                                          r"\(used in __lost__\)$"):
        expand("__lost__")


def test_wildcard_without_values_is_an_error():
    with pytest.raises(PromptError, match=r"^wildcard __empty__ has no "
                                          r"values$"):
        expand("__empty__")


def test_directly_recursive_wildcard_names_the_cycle():
    with pytest.raises(PromptError, match=r"^wildcard __self__ is recursive: "
                                          r"__self__ -> __self__$"):
        count_prompts("__self__", WILDCARDS)


def test_indirectly_recursive_wildcard_names_the_cycle():
    with pytest.raises(PromptError, match=r"recursive: __loop__ -> __loop_b__ "
                                          r"-> __loop__$"):
        expand("__loop__", mode="random", limit=1)


def test_recursion_through_choose_n_is_caught():
    with pytest.raises(PromptError, match=r"recursive: __picky__ -> "
                                          r"__picky__$"):
        expand("__picky__")


def test_tokens_reach_wildcard_values():
    assert expand("__styled__", tokens={"style": "felt"}) == ["felt hat"]
    with pytest.raises(PromptError, match=r"^wildcard __styled__ value 1, "
                                          r"column 1: undefined token "
                                          r"\$\{style\}; defined tokens: none"):
        expand("__styled__")


def test_zero_weights_never_break_a_random_draw():
    assert expand("{2$$0::a|b}", mode="random", limit=2, seed=1) == ["b", "b"]
    assert len(expand("{0::a|0::b}", mode="random", limit=2, seed=1)) == 2


def test_random_choose_n_keeps_written_order():
    prompts = expand("{2$$a|b|c}", mode="random", limit=20, seed=4)
    assert set(prompts) <= {"a,b", "a,c", "b,c"}


def test_reserved_characters_are_refused():
    with pytest.raises(PromptError, match=r"column 2: character U\+E07B"):
        expand("a\ue07b")


def test_syntax_error_in_a_wildcard_value_names_wildcard_and_value():
    with pytest.raises(PromptError, match=r"^wildcard __broken__ value 2, "
                                          r"column 5: '\{' is never closed"):
        expand("__broken__")


def test_variants_in_a_wildcard_name_are_refused():
    with pytest.raises(PromptError, match="names cannot contain variants"):
        expand("__{colors|animals}__")


def test_combinatorial_over_the_limit_names_the_count():
    with pytest.raises(PromptError, match=r"^prompt gives 1,000 prompts, over "
                                          r"the limit of 999$"):
        expand("{0|1|2|3|4|5|6|7|8|9}" * 3, limit=999)


def test_overlong_prompt_names_the_item_and_length():
    template = "{a|" + "b" * (MAX_PROMPT_CHARS + 1) + "}"
    with pytest.raises(PromptError, match=r"^prompt 2 of 2 is 4,001 "
                                          r"characters long, over the limit "
                                          r"of 4,000$"):
        expand(template)
    with pytest.raises(PromptError, match=r"^prompt 2 of 2 is 3 characters"):
        expand("{ab|abc}", max_chars=2)


def test_error_excerpt_of_a_long_line_is_cut_around_the_caret():
    with pytest.raises(PromptError) as caught:
        expand("x" * 100 + " {a" + "y" * 100)
    assert str(caught.value).splitlines()[1:] == [
        "  ..." + "x" * 39 + " {a" + "y" * 38 + "...",
        "  " + " " * 43 + "^"]


def test_unknown_mode_is_refused():
    with pytest.raises(PromptError, match="unknown prompt mode 'all'"):
        count_prompts("a", WILDCARDS, "all")


def test_interpolate_fills_tokens_in_plain_strings():
    tokens = {"project": "kites", "seed": 42}
    assert interpolate("${project}-${ seed }_$$1_$x", tokens) == "kites-42_$1_$x"


def test_interpolate_refuses_an_unclosed_token():
    with pytest.raises(PromptError, match=r"^text, column 3: '\$\{' is never "
                                          r"closed"):
        interpolate("a ${seed", {"seed": 1})


def test_interpolate_names_an_undefined_token():
    with pytest.raises(PromptError, match=r"^file_name, column 5: undefined "
                                          r"token \$\{sed\}; defined tokens: "
                                          r"seed"):
        interpolate("img-${sed}", {"seed": 1}, field="file_name")


def test_txt_wildcard_file_skips_comments_and_blank_lines():
    data = b"# warm colours\nred\n\n  dark red  \n#skip\norange\n"
    assert load_wildcard_file("warm.txt", data) == {
        "warm": ["red", "dark red", "orange"]}


def test_json_wildcard_file_nests_names_and_keeps_weights():
    data = json.dumps({"colors": {"warm": ["red", {"text": "orange",
                                                   "weight": 2}],
                                  "cool": "teal"},
                       "animals": ["cat", 3, None, ""]}).encode()
    assert load_wildcard_file("pantry.json", data) == {
        "colors/warm": ["red", "2::orange"], "colors/cool": ["teal"],
        "animals": ["cat", "3"]}


def test_json_top_level_list_is_one_wildcard_named_for_the_file():
    assert load_wildcard_file("dir/shapes.json", b'["a", "b"]') == {
        "shapes": ["a", "b"]}


def test_loaded_weights_steer_random_prompts():
    wildcards = load_wildcard_file("w.json", b'{"w": ["0::no", "yes"]}')
    assert expand_prompts("__w__", wildcards, "random", limit=3, seed=0) == [
        "yes"] * 3


def test_malformed_json_names_file_line_and_column():
    with pytest.raises(ValueError, match=r"^bad\.json: line 2, column 1: "
                                         r"Expecting value$"):
        load_wildcard_file("bad.json", b'{"a":\n]')


def test_json_value_of_the_wrong_kind_names_the_key():
    with pytest.raises(ValueError, match=r"^p\.json: key 'a/b' holds a int; "
                                         r"expected a list"):
        load_wildcard_file("p.json", b'{"a": {"b": 5}}')
    with pytest.raises(ValueError, match=r"^p\.json: key 'a' item 2 is a "
                                         r"list; expected text$"):
        load_wildcard_file("p.json", b'{"a": ["x", ["y"]]}')


def test_wildcard_file_needs_a_known_extension_and_utf8():
    with pytest.raises(ValueError, match=r"^w\.csv: wildcard files end in"):
        load_wildcard_file("w.csv", b"a")
    with pytest.raises(ValueError, match=r"^w\.txt: not UTF-8 text \(byte 1\)"):
        load_wildcard_file("w.txt", b"a\xff")


def test_wildcard_file_without_values_is_refused():
    with pytest.raises(ValueError, match=r"^w\.txt: no wildcard values found$"):
        load_wildcard_file("w.txt", b"# only a comment\n\n")


def test_yaml_wildcard_file_nests_names():
    pytest.importorskip("yaml")
    data = b"colors:\n  warm:\n    - red\n    - orange\nshapes: [a, b]\n"
    assert load_wildcard_file("p.yaml", data) == {
        "colors/warm": ["red", "orange"], "shapes": ["a", "b"]}


def test_malformed_yaml_names_the_line():
    pytest.importorskip("yaml")
    with pytest.raises(ValueError, match=r"^p\.yml: line 2: "):
        load_wildcard_file("p.yml", b"a: [x\nb: ]\n")


def test_yaml_without_pyyaml_says_so(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    with pytest.raises(ValueError, match=r"^p\.yaml: reading YAML needs "
                                         r"PyYAML, which is not installed$"):
        load_wildcard_file("p.yaml", b"a: [x]")


PROPERTY_WILDCARDS = {
    "a": ["x", "y z"],
    "b": ["{p|q}", "__a__", "r"],
    "c/d": ["m"],
    "c/e": ["n", "{o|__a__}"],
}
LEAVES = st.sampled_from(["", "k", "l m", "__a__", "__b__", "__c/*__",
                          "__c/e__", "$", "#"])
BOUNDS = st.sampled_from(["", "", "2$$", "1-2$$", "0-2$$", "~", "2$$-$$"])


def _variant(options: list[str], bound: str) -> str:
    return "{" + bound + "|".join(options) + "}"


TEMPLATES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        # Distinct options: two empty ones are refused, as is a bound over
        # the number of options.
        st.builds(_variant, st.lists(inner, min_size=2, max_size=3, unique=True),
                  BOUNDS),
        st.lists(inner, min_size=2, max_size=3).map(" ".join),
    ),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(TEMPLATES)
def test_count_matches_the_prompts_made(template):
    prompts = expand_prompts(template, PROPERTY_WILDCARDS, limit=10**6, seed=1)
    assert count_prompts(template, PROPERTY_WILDCARDS) == len(prompts)


@settings(max_examples=30, deadline=None)
@given(TEMPLATES, st.integers(min_value=0, max_value=5))
def test_random_mode_gives_the_number_asked(template, number):
    prompts = expand_prompts(template, PROPERTY_WILDCARDS, "random",
                             limit=number, seed=5)
    assert len(prompts) == number
    if "~" not in template:  # then every draw is one of the listed prompts
        listed = expand_prompts(template, PROPERTY_WILDCARDS, limit=10**6)
        assert set(prompts) <= set(listed)
