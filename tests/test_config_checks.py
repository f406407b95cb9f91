"""YAML with unique keys and safe user regexes (issue 17, item 7)."""

from __future__ import annotations

import re
import time

import pytest
import yaml

from regiontag.config_checks import MAX_REGEX_REPEATS, DuplicateKeyError, check_safe_regex, safe_load_unique


def test_duplicate_keys_named_with_their_mapping_and_line():
    assert safe_load_unique("a: 1\nb:\n  c: 2\n  d: [1, 2]\n") == {"a": 1, "b": {"c": 2, "d": [1, 2]}}
    with pytest.raises(DuplicateKeyError, match=r"^b\.inner: duplicate key 'c' at line 5 \(first given at line 4\)"):
        safe_load_unique("a: 1\nb:\n  inner:\n    c: 1\n    c: 2\n")
    with pytest.raises(DuplicateKeyError, match=r"^\(top level\): duplicate key 'a'"):
        safe_load_unique("a: 1\na: 1\n")
    with pytest.raises(yaml.YAMLError):  # other problems stay YAML errors
        safe_load_unique("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError):  # and python tags stay refused
        safe_load_unique("!!python/object/apply:os.system ['true']\n")


@pytest.mark.parametrize("pattern", ["flair", r"(^|[_-])ce-", r"t1w?.*(gd|gad|post|contrast|ce\b|[+]c)",
                                     r"mprage.*post", r"b[-_]?1000", "a{2,3}b"])
def test_ordinary_file_name_rules_accepted(pattern):
    assert check_safe_regex(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("(a+)+$", "nested quantifier"), ("((ab)*c)+", "nested quantifier"), ("(?:a|ab)*$", "alternation"),
     ("(x)(?P=x)", "invalid regular expression"), ("(?P<x>a)(?P=x)", "backreference"), ("[z-a]", "invalid"),
     ("a*b*c*", "3 repeats")],
)
def test_unsafe_regexes_refused(pattern, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_safe_regex(pattern)


def test_every_accepted_shape_is_fast_on_a_hostile_name():
    """The worst accepted rule (MAX_REGEX_REPEATS repeats over the same characters) fails fast on 255 characters."""
    worst = "a*" * MAX_REGEX_REPEATS + "b"
    check_safe_regex(worst)
    started = time.perf_counter()
    assert re.search(worst, "a" * 255, flags=re.IGNORECASE) is None
    assert time.perf_counter() - started < 1.0
