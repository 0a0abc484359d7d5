"""load_log as a whole: a file that is not an event log gets one clear DataError, and the
shared samples of the real datasets load to known counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model.data import DataError, LoadedLog, load_log

DATASETS = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"
Write = Callable[[str, str | bytes], Path]
Load = Callable[..., LoadedLog]


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (bytes(range(256)) * 64, "auto", "look binary"),
        (b"\x00\x01\x02 PK zip", "taobao", "look binary"),
        (b"name,age\nann,31\nbob,42\n", "auto", "cannot tell the format"),
        (b"a,b,c\n1,2,3\n", "taobao", "no valid event rows"),
        (b"", "taobao", "is empty"),
        (b"", "auto", "is empty"),
        (b"1,2,3,walk,1511600000\n1,2,3,run,1511600000\n", "taobao", "no valid event rows"),
        (b"event_time,event_type\n2019-10-01 00:00:00 UTC,view\n", "rees46", "lacks column"),
    ],
)
def test_a_file_that_is_not_an_event_log_gets_one_clear_error(
    write: Write, load: Load, content: bytes, fmt: str, message: str
) -> None:
    path = write("junk.csv", content)
    with pytest.raises(DataError, match=message):
        load(path, fmt=fmt)


def test_no_valid_rows_error_names_the_expected_columns_and_first_line(
    write: Write, load: Load
) -> None:
    path = write("x.csv", "hello,world,foo,bar,baz\n")
    with pytest.raises(DataError) as err:
        load(path, fmt="taobao")
    text = str(err.value)
    assert "user=user" in text and "timestamp=timestamp" in text
    assert "hello,world,foo,bar,baz" in text


def test_missing_file(tmp_path: Path, load: Load) -> None:
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "absent.csv")


def shared(relative: str) -> Path:
    path = DATASETS / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.shared_data
def test_taobao_sample_counts() -> None:
    loaded = load_log(shared("taobao_users/UserBehavior.csv"), progress=False)
    report = loaded.report
    assert report.malformed == {"wrong_field_count": 1}
    assert report.valid_rows == 84_475
    steps = {s.name: s.rows_removed for s in report.cleaning}
    assert steps["out_of_span"] == 35  # strays back to 2017-09-11
    assert steps["bots"] == 0 and steps["duplicates"] == 0
    assert report.n_users == 815
    assert report.behavior_counts == {"view": 75_837, "fav": 2_356, "cart": 4_497, "buy": 1_750}
    assert report.start.startswith("2017-11-24 16:")  # 2017-11-25 00:xx Beijing


@pytest.mark.shared_data
def test_rees46_sample_counts(load: Load) -> None:
    loaded = load(shared("rees46_sample/2019-Oct.csv"))
    report = loaded.report
    assert report.format == "rees46"
    assert report.malformed == {"wrong_field_count": 1}
    assert report.valid_rows == 17_434
    assert report.behavior_counts == {"view": 17_055, "fav": 0, "cart": 165, "buy": 214}
    assert report.n_users == 4_504 and report.n_items == 6_493
