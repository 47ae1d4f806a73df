"""Seed 003's weekly weather series as a sequence data set: windows of weeks -> the season."""

import os
from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

from mnist_estimator.common.errors import UsageError
from mnist_estimator.data import readers
from mnist_estimator.data.dataset import Dataset
from mnist_estimator.data.dataset import DatasetInfo

FILE = "weather.npz"
# The columns of the file's `weekly` array after the date (YYYYMMDD): weekly rain (inches,
# summed), snow on the ground (inches, averaged), snowfall (inches, summed), mean daily high
# and low temperature (degrees Fahrenheit).
FEATURES = ("rain", "snow_depth", "snowfall", "high", "low")
# The book's numbering of the meteorological seasons (its assign_season): spring = 0.
SEASONS = ("spring", "summer", "autumn", "winter")
TEST_YEARS = 10
# 52 weeks, a year: the whole annual cycle up to the last week, so the network can tell where
# in the year that week lies (spring and autumn have the same temperatures; the trend and the
# winter or summer before tell them apart). Measured on the real file (README, "Weather
# seasons"), the LSTM of flags/weather_better.flags scores 91.8% with 13 weeks, 94.4% with 26
# and 96.1% with 52 (twice the time per step of 26, still about 3 minutes); the book's
# BasicRNNCell, which forgets beyond a few dozen steps, 76.7%, 79.8% and 78.8%. The price: the
# first 51 weeks of the test decade are context only, not labels.
DEFAULT_WINDOW = 52


def seasons(dates: npt.ArrayLike) -> np.ndarray:
  """Meteorological season ids (SEASONS) of YYYYMMDD dates: Mar-May 0 ... Dec-Feb 3."""
  months = (np.asarray(dates, np.int64) // 100) % 100
  return ((months - 3) % 12 // 3).astype(np.int32)


def read_weekly(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads and checks the `weekly` array of weather.npz.

  Returns:
    (dates int64 [N] as YYYYMMDD, features float64 [N, 5]).

  Raises:
    UsageError: the file is unreadable, lacks `weekly`, or holds malformed rows.
  """
  weekly = np.asarray(readers.read_npz(path, ("weekly",))["weekly"])
  if weekly.ndim != 2 or weekly.shape[1] != 1 + len(FEATURES) or not len(weekly):
    raise UsageError(f"{path}[weekly] has shape {list(weekly.shape)}; expected [weeks, 6] "
                     "(date, rain, snow depth, snowfall, high, low): re-copy weather.npz")
  if weekly.dtype.kind not in "iuf" or not np.all(np.isfinite(weekly)):
    raise UsageError(f"{path}[weekly] holds {weekly.dtype} values that are not all finite "
                     "numbers; re-copy weather.npz")
  dates = weekly[:, 0].astype(np.int64)
  months, days = dates // 100 % 100, dates % 100
  bad = np.flatnonzero((months < 1) | (months > 12) | (days < 1) | (days > 31))
  if bad.size:
    raise UsageError(f"{path}[weekly] row {bad[0]} has the date {dates[bad[0]]}, not YYYYMMDD; "
                     "re-copy weather.npz")
  if np.any(np.diff(dates) <= 0):
    raise UsageError(f"{path}[weekly] dates are not increasing; re-copy weather.npz")
  return dates, weekly[:, 1:].astype(np.float64)


def _days(dates: np.ndarray) -> np.ndarray:
  """YYYYMMDD ints as day numbers, for finding gaps in the weekly series."""
  text = [f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" for d in dates]
  return np.array(text, dtype="datetime64[D]").astype(np.int64)


def window_ends(dates: np.ndarray, window: int, start: int, stop: int) -> np.ndarray:
  """Indices e in [start, stop) whose window of weeks e-window+1..e is gap-free and inside.

  A window never reaches before `start` (so no week of another split enters it) and never
  spans a gap in the series (some years miss weeks), so its rows are consecutive weeks.
  """
  days = _days(dates[start:stop])
  # run[i]: how many consecutive weekly rows end at row start+i.
  run = np.ones(len(days), np.int64)
  for i in range(1, len(days)):
    run[i] = run[i - 1] + 1 if days[i] - days[i - 1] == 7 else 1
  return start + np.flatnonzero(run >= window)


def windows(features: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
  """Stacks features[e-window+1 : e+1] for each e in ends: float32 [len(ends), window, F, 1]."""
  offsets = np.arange(-window + 1, 1)
  return features[ends[:, None] + offsets].astype(np.float32)[..., np.newaxis]


def split_index(dates: np.ndarray, test_years: int = TEST_YEARS) -> int:
  """The first row of the last `test_years` calendar years (the test set starts there)."""
  years = dates // 10000
  first_test_year = years[-1] - test_years + 1
  return int(np.searchsorted(years, first_test_year))


def load(data_dir: Optional[str] = None, seed: int = 0, window: Optional[int] = None) -> Dataset:
  """The weather set: windows of standardised weeks, labelled with the last week's season.

  The last TEST_YEARS calendar years are the test set and the years before them the
  training set; no window crosses the boundary. Each feature is standardised with the
  mean and standard deviation of the training years' weeks only.

  Args:
    data_dir: the directory that holds weather.npz.
    seed: unused: the split is by time.
    window: weeks per example (None: DEFAULT_WINDOW).

  Returns:
    A Dataset with float32 x [N, window, 5, 1], int32 season labels, class_names
    SEASONS and standardize = (mean, std) of the raw features.

  Raises:
    UsageError: no data_dir or file, a malformed file, or a window that leaves no examples.
  """
  del seed  # split by time, not at random
  window = DEFAULT_WINDOW if window is None else int(window)
  path = os.path.join(data_dir, FILE) if data_dir else None
  if path is None or not os.path.isfile(path):
    where = "no --data_dir was given" if path is None else f"{path} does not exist"
    raise UsageError(f"The weather data set needs {FILE} but {where}; pass --data_dir=DIR for "
                     "the directory that holds it (e.g. --data_dir=../shared/data/weather)")
  if window < 1:
    raise UsageError(f"--window={window} must be at least 1 week; pass e.g. --window=52")
  dates, features = read_weekly(path)
  split = split_index(dates)
  if split == 0:
    raise UsageError(f"{path} spans only {dates[-1] // 10000 - dates[0] // 10000 + 1} years; "
                     f"the weather set needs more than {TEST_YEARS} (the last {TEST_YEARS} "
                     "are the test set): re-copy weather.npz")
  mean, std = features[:split].mean(axis=0), features[:split].std(axis=0)
  std = np.where(std > 0, std, 1.0)  # a constant feature (none in the real file) stays 0
  scaled = (features - mean) / std
  labels = seasons(dates)
  train = window_ends(dates, window, 0, split)
  test = window_ends(dates, window, split, len(dates))
  if not len(train) or not len(test):
    raise UsageError(f"--window={window} is longer than every unbroken run of weeks in the "
                     f"{'training' if not len(train) else 'test'} years; pass a smaller --window")
  source = (f"{path} (window {window}: {len(train)} train windows to "
            f"{dates[split - 1] // 10000}, {len(test)} test windows from {dates[split] // 10000})")
  return Dataset(
      "weather", (window, len(FEATURES), 1), len(SEASONS),
      windows(scaled, train, window), labels[train], windows(scaled, test, window),
      labels[test], source, class_names=SEASONS,
      standardize=(mean.astype(np.float32), std.astype(np.float32)))


WEATHER = DatasetInfo("weather", load, kind="series", dir_flag="weather_dir",
                      panel="weather test accuracy",
                      about="seed 003's weekly weather: windows of weeks -> the season")
