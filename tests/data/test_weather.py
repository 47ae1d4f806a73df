"""The weather data set on a small generated weather.npz: windows, time split, standardisation."""

import numpy as np
import pytest
from helpers import FIRST_YEAR, YEARS, weekly_series, write_weather  # pylint: disable=g-bad-import-order

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import datasets, weather
from mnist_estimator.predict import sequences


def raw(data, x):
  """Undoes the standardisation: the windows' raw weekly values [n, window, 5]."""
  mean, std = data.standardize
  return x[..., 0] * std + mean


def test_shapes_names_and_labels(tmp_path):
  data = datasets.load("weather", write_weather(tmp_path), window=4)
  assert data.name == "weather" and data.image_shape == (4, 5, 1) and data.n_classes == 4
  assert data.class_names == ("spring", "summer", "autumn", "winter")
  assert data.x_train.dtype == np.float32 and data.x_train.shape[1:] == (4, 5, 1)
  assert data.y_train.dtype == np.int32 and set(data.y_train) == {0, 1, 2, 3}
  weeks = len(weekly_series())
  train_weeks = int(np.sum(weekly_series()[:, 0] < (FIRST_YEAR + 3) * 10000))
  # Every window of 4 whole weeks inside its split: 3 fewer than weeks in each.
  assert len(data.y_train) == train_weeks - 3
  assert len(data.y_test) == weeks - train_weeks - 3
  assert data.x_test.shape == (len(data.y_test), 4, 5, 1)


def test_label_is_the_season_of_the_last_week(tmp_path):
  weekly = weekly_series()
  data = datasets.load("weather", write_weather(tmp_path, weekly), window=3)
  # The first training window ends at row 2; the seasons follow the book (spring = 0).
  assert data.y_train[0] == weather.seasons([weekly[2, 0]])[0] == 3  # January: winter
  np.testing.assert_array_equal(weather.seasons([20010301, 20010601, 20010901, 20011201,
                                                 20010228, 20010531, 20010831, 20011130]),
                                [0, 1, 2, 3, 3, 0, 1, 2])
  np.testing.assert_allclose(raw(data, data.x_train[0]), weekly[:3, 1:], rtol=1e-5, atol=1e-4)


def test_time_split_keeps_test_years_out_of_training(tmp_path):
  data = datasets.load("weather", write_weather(tmp_path), window=6)
  train_years = np.floor(raw(data, data.x_train)[..., 0] + 0.01) + FIRST_YEAR
  test_years = np.floor(raw(data, data.x_test)[..., 0] + 0.01) + FIRST_YEAR
  first_test = FIRST_YEAR + YEARS - weather.TEST_YEARS
  assert train_years.max() == first_test - 1  # no week of a test year in any training window
  assert test_years.min() == first_test  # and no window straddles the boundary
  assert set(np.unique(test_years)) == set(range(first_test, FIRST_YEAR + YEARS))


def test_standardised_with_the_training_years_only(tmp_path):
  weekly = weekly_series()
  data = datasets.load("weather", write_weather(tmp_path, weekly), window=1)
  train_rows = weekly[weekly[:, 0] < (FIRST_YEAR + 3) * 10000, 1:]
  mean, std = data.standardize
  np.testing.assert_allclose(mean, train_rows.mean(axis=0), rtol=1e-5)
  np.testing.assert_allclose(std, train_rows.std(axis=0), rtol=1e-5)
  # Window 1 covers every training week once: mean 0, std 1 there; the later (rainier) test
  # years are not centred.
  np.testing.assert_allclose(data.x_train[:, 0, :, 0].mean(axis=0), 0, atol=1e-4)
  np.testing.assert_allclose(data.x_train[:, 0, :, 0].std(axis=0), 1, atol=1e-4)
  assert data.x_test[:, 0, 0, 0].mean() > 3


def test_no_window_spans_a_gap(tmp_path):
  weekly = weekly_series(gap_at=40)
  data = datasets.load("weather", write_weather(tmp_path, weekly), window=4)
  train_weeks = int(np.sum(weekly[:, 0] < (FIRST_YEAR + 3) * 10000))
  # The gap splits the training years in two runs: 3 windows fewer in each.
  assert len(data.y_train) == train_weeks - 6
  ends = weather.window_ends(weekly[:, 0].astype(np.int64), 4, 0, train_weeks)
  assert not set(ends) & {40, 41, 42}


def test_majority_baseline(tmp_path):
  data = datasets.load("weather", write_weather(tmp_path), window=2)
  majority, accuracy = datasets.majority_accuracy(data)
  assert np.bincount(data.y_train)[majority] == np.bincount(data.y_train).max()
  assert accuracy == pytest.approx(np.mean(data.y_test == majority))


@pytest.mark.parametrize("call, fragments", [
    (lambda d: datasets.load("weather"), ["weather.npz", "--data_dir="]),
    (lambda d: datasets.load("weather", str(d / "nowhere")), ["does not exist", "--data_dir="]),
    (lambda d: datasets.load("weather", write_weather(d), window=600), ["--window=600",
                                                                        "smaller --window"]),
    (lambda d: datasets.load("mnist_sample", window=4), ["--window", "drop --window"]),
    (lambda d: datasets.load("weather", write_weather(d, weekly_series(years=8))),
     ["8 years", "more than 10"]),
])
def test_usage_errors(tmp_path, call, fragments):
  with pytest.raises(UsageError) as info:
    call(tmp_path)
  assert "\n" not in str(info.value)
  for fragment in fragments:
    assert fragment in str(info.value)


def test_malformed_file(tmp_path):
  np.savez(tmp_path / weather.FILE, weekly=np.zeros([10, 4]))
  with pytest.raises(UsageError, match="expected \\[weeks, 6\\]"):
    datasets.load("weather", str(tmp_path))
  np.savez(tmp_path / weather.FILE, daily=np.zeros([10, 6]))
  with pytest.raises(UsageError, match="lacks the key"):
    datasets.load("weather", str(tmp_path))


def test_sequences_as_windows():
  shape = (3, 5, 1)
  rows = np.arange(30, dtype=np.float64).reshape(6, 5)
  assert sequences.as_windows(rows[:3], "f", shape).shape == (1, 3, 5, 1)
  slid = sequences.as_windows(rows, "f", shape)  # a longer series: every window of it
  assert slid.shape == (4, 3, 5, 1) and slid[3, 0, 0, 0] == 15
  assert sequences.as_windows(rows[:6].reshape(2, 3, 5), "f", shape).shape == (2, 3, 5, 1)
  for bad, fragment in ((rows[:2], "give at least 3 rows"), (rows[:, :4], "rows of 5 values"),
                        (np.zeros([2, 4, 5]), "windows of 3 rows")):
    with pytest.raises(UsageError, match=fragment):
      sequences.as_windows(bad, "f", shape)
