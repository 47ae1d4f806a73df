"""The load test's pieces: one bounded wrk run against a live server, and the table."""

import shutil

import pytest

from mnist_estimator.tools import loadtest


@pytest.mark.skipif(not shutil.which("wrk"), reason="no wrk: apt-get install -y wrk")
def test_a_wrk_run_is_bounded_in_requests(served, tmp_path):
  script = {"path": str(tmp_path / "post.lua"), "body": str(tmp_path / "body.json")}
  loadtest.write_body(script["body"])
  result = loadtest.run_wrk(served[0], 4, 2, 200, script)
  assert result["errors"] == 0
  assert 200 <= result["requests"] < 400  # stopped by the request bound within the 2 s
  assert result["rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_table_gives_medians_and_the_speedup():
  run = lambda rps, p50, p99: {"rps": rps, "p50_ms": p50, "p99_ms": p99}
  results = {"batching": {32: [run(2000, 10, 40), run(1800, 12, 45), run(2200, 9, 30)]},
             "baseline": {32: [run(400, 60, 90), run(500, 50, 80), run(450, 55, 85)]}}
  assert loadtest.table(results, [32]).splitlines()[-1] == (
      "| 32 | 2,000 | 10.0 | 40.0 | 450 | 55.0 | 85.0 | 4.4 |")
