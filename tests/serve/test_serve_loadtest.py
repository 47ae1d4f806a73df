"""The load test's pieces: bounded wrk and gRPC runs against a live server, and the table."""

import shutil

import numpy as np
import pytest

from mnist_estimator.tools import loadtest, loadtest_grpc


@pytest.mark.skipif(not shutil.which("wrk"), reason="no wrk: apt-get install -y wrk")
def test_a_wrk_run_is_bounded_in_requests(served, tmp_path):
  script = {"path": str(tmp_path / "post.lua"), "body": str(tmp_path / "body.json")}
  loadtest.write_body(script["body"])
  # 40 requests in 2 s: the bound stops the run even on a machine busy with other work.
  result = loadtest.run_wrk(served[0], 4, 2, 40, script)
  assert result["errors"] == 0
  assert 40 <= result["requests"] < 80  # stopped by the request bound within the 2 s
  assert result["rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_a_grpc_run_is_bounded_in_requests(served):
  body = loadtest_grpc.predict_request_bytes(np.zeros([28, 28], np.float32))
  result = loadtest_grpc.run_grpc(served.grpc, 4, 2, 40, body)
  assert result["errors"] == 0 and result["requests"] == 40
  assert result["rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]
  # A request the server refuses counts as an error, not as an answer.
  bad = loadtest_grpc.predict_request_bytes(np.zeros([28, 28], np.float32), "nope")
  assert loadtest_grpc.run_grpc(served.grpc, 2, 2, 10, bad)["errors"] == 10


def test_table_gives_medians_and_the_speedup():
  run = lambda rps, p50, p99: {"rps": rps, "p50_ms": p50, "p99_ms": p99}
  modes = {"batching": {32: [run(2000, 10, 40), run(1800, 12, 45), run(2200, 9, 30)]},
           "baseline": {32: [run(400, 60, 90), run(500, 50, 80), run(450, 55, 85)]}}
  lines = loadtest.table({"mlp": {"rest": modes, "grpc": modes}}, [32]).splitlines()
  assert lines[-2:] == ["| mlp | REST | 32 | 2,000 | 10.0 | 40.0 | 450 | 55.0 | 85.0 | 4.4 |",
                        "| mlp | gRPC | 32 | 2,000 | 10.0 | 40.0 | 450 | 55.0 | 85.0 | 4.4 |"]
