"""Tables as CSV and FITS bytes (clapkit.tables_io): round trips through astropy."""

import io

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from clapkit.errors import ValidationError
from clapkit.tables_io import FORMATS, make_table, read_table_bytes, table_bytes


@pytest.fixture
def table():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "id": np.arange(5, dtype=np.int64) * 1000 + 7,
            "set": ["real", "nrgan", "nrgan_smooth", "a b", "x,y"],
            "log_mstar": rng.normal(10.0, 0.5, 5),
            "z": [0.1, np.nan, 0.3, 0.4, 0.5],
        }
    )
    return make_table(
        frame,
        units={"log_mstar": "dex"},
        descriptions={"z": "true redshift", "log_mstar": "estimated log M*"},
        meta={"RUN": "demo", "selection": "0.1 <= z_true < 0.2", "N": 5},
    )


@pytest.mark.parametrize("format", sorted(FORMATS))
def test_round_trip_keeps_values_units_descriptions_and_notes(table, format):
    back = read_table_bytes(table_bytes(table, format), format)
    assert back.colnames == table.colnames
    assert back["id"].tolist() == table["id"].tolist()
    assert back["set"].tolist() == table["set"].tolist()  # commas and spaces survive
    np.testing.assert_array_equal(back["log_mstar"], table["log_mstar"])  # exact, not rounded
    assert np.isnan(back["z"][1]) and back["z"][2] == 0.3
    assert str(back["log_mstar"].unit) == "dex"
    assert back["z"].description == "true redshift"
    assert back.meta["RUN"] == "demo" and back.meta["N"] == 5


def test_csv_is_plain_csv_for_pandas(table):
    frame = pd.read_csv(io.BytesIO(table_bytes(table, "csv")), comment="#")
    assert list(frame.columns) == table.colnames
    assert frame["id"].tolist() == table["id"].tolist()
    assert frame["set"].tolist() == table["set"].tolist()


def test_fits_is_one_named_binary_table(table):
    with fits.open(io.BytesIO(table_bytes(table, "fits", name="GALAXIES"))) as hdus:
        assert len(hdus) == 2 and hdus[1].name == "GALAXIES"
        assert hdus[1].header["TUNIT3"] == "dex"
        # A note with a long key becomes a comment line rather than failing.
        assert any("SELECTION" in str(line) for line in hdus[1].header["COMMENT"])


def test_bad_input_is_refused():
    with pytest.raises(ValidationError, match="differ in length"):
        make_table({"a": [1, 2], "b": [1]})
    with pytest.raises(ValidationError, match=r"unit given for column\(s\) \['c'\]"):
        make_table({"a": [1]}, units={"c": "mag"})
    with pytest.raises(ValidationError, match="table format 'xlsx'"):
        table_bytes(make_table({"a": [1]}), "xlsx")
