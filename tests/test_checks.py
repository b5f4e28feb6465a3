"""The one integer check every setting goes through."""

import numpy as np
import pytest

from clapkit.checks import check_choice, check_int, check_names, check_number
from clapkit.errors import ValidationError


@pytest.mark.parametrize("value", [1, 7, np.int64(7), np.uint8(3), 10**12])
def test_integers_at_or_above_the_minimum_come_back_as_python_ints(value):
    result = check_int(value, "epochs")
    assert result == value and type(result) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, 2.5, True, "3", None, np.float64(3.0)])
def test_everything_else_is_refused_with_the_setting_named(value):
    with pytest.raises(ValidationError) as err:
        check_int(value, "--workers")
    assert str(err.value) == f"--workers must be an integer >= 1, got {value!r}"


def test_the_minimum_is_the_callers_and_none_allows_any_integer():
    assert check_int(0, "seed", minimum=0) == 0
    with pytest.raises(ValidationError, match=r"seed must be an integer >= 0, got -1"):
        check_int(-1, "seed", minimum=0)
    assert check_int(-5, "offset", minimum=None) == -5
    with pytest.raises(ValidationError, match=r"^offset must be an integer, got 1\.5$"):
        check_int(1.5, "offset", minimum=None)


@pytest.mark.parametrize("value", [True, "0.1", float("nan"), float("inf"), 0, 1])
def test_check_number_refuses_non_numbers_and_values_outside_open_bounds(value):
    with pytest.raises(ValidationError, match=r"alpha must be a number in \(0, 1\)"):
        check_number(value, "alpha", above=0, below=1)


def test_check_number_accepts_integers_and_names_one_sided_bounds():
    assert check_number(4, "span", above=0) == 4.0
    with pytest.raises(ValidationError, match="span must be a number > 0, got -1"):
        check_number(-1, "span", above=0)


def test_check_choice_and_check_names():
    assert check_choice("a", "method", ("a", "b")) == "a"
    with pytest.raises(ValidationError, match=r"method must be one of \['a', 'b'\], got 'c'"):
        check_choice("c", "method", ("a", "b"))
    assert check_names(" z, hlr ,", "external") == ("z", "hlr")
    assert check_names(["z"], "external") == ("z",)
    with pytest.raises(ValidationError, match="external must hold names"):
        check_names(["z", 3], "external")
    with pytest.raises(ValidationError, match="external must be a sequence of names"):
        check_names(3, "external")
