"""The load test's pieces: bounded wrk and gRPC runs against a live server, and the table."""

import os
import shutil
import types

import numpy as np
import pytest

from benchmarks import loadtest, loadtest_grpc, loadtest_large


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


def test_the_large_request_row_times_both_apis_and_reads_the_rss(served):
  bodies = loadtest_large.large_bodies(300)  # a 300-row piece of the 10,000-image row
  server = types.SimpleNamespace(url=served.url, grpc_target=served.grpc,
                                 rss_mb=lambda: loadtest_large.rss_mb(os.getpid()))
  result = loadtest_large.large_request(server, bodies, settle=0)
  assert result["grpc_s"] > 0 and result["rest_s"] > 0
  assert all(result[k] > 0 for k in ("rss_before_mb", "rss_after_grpc_mb", "rss_after_mb",
                                     "rss_settled_mb"))
  lines = loadtest_large.large_table({("cnn", "batching"): result}, 300, settle=0).splitlines()
  assert lines[0].startswith("| model | batching | rows | gRPC s | REST s | RSS before MB")
  assert lines[-1].startswith("| cnn | on | 300 | ")


def test_the_servers_get_room_for_the_large_request_unless_told():
  bodies = {"json": b"x" * 100, "grpc": b"y" * 50, "rows": 10000}
  assert loadtest_large.room_for(bodies, []) == [f"--max_body_bytes={100 + (1 << 20)}",
                                                 "--max_enqueued_batches=10000"]
  assert loadtest_large.room_for(bodies, ["--max_enqueued_batches=7", "--max_body_bytes=9"]) == []
  assert loadtest_large.room_for(bodies, [], batching=False) == [
      f"--max_body_bytes={100 + (1 << 20)}"]
  assert loadtest_large.room_for(None, []) == []


def test_the_metrics_check_counts_what_the_clients_sent(tiny_export, tmp_path):
  """make loadtest's check: the server's request_count over a run equals the client's count."""
  from mnist_estimator.serve import batching, server  # pylint: disable=g-import-not-at-top
  from benchmarks import loadtest_metrics  # pylint: disable=g-import-not-at-top
  app, manager, batcher = server.build(tiny_export, poll_seconds=0, metrics_path=loadtest_metrics
                                       .PATH, batch_options=batching.BatchOptions())
  with server.BackgroundServer(app, manager, batcher) as background:
    fake = types.SimpleNamespace(url=background.url, grpc_target=background.grpc_target)
    script = {"path": str(tmp_path / "post.lua"), "body": str(tmp_path / "body.json"),
              "grpc": loadtest_grpc.predict_request_bytes(np.zeros([28, 28], np.float32))}
    loadtest.write_body(script["body"])
    apis = ["grpc"] + (["rest"] if shutil.which("wrk") else [])
    for api in apis:
      result = loadtest._counted_run(api, fake, 4, 1, 40, script)  # pylint: disable=protected-access
      assert result["counted"] >= 40
    assert loadtest_metrics.check("grpc", {"requests": 40, "errors": 2}, 42, 4) is None
    assert "counted 41" in loadtest_metrics.check("grpc", {"requests": 40, "errors": 2}, 41, 4)
    assert loadtest_metrics.check("rest", {"requests": 40, "errors": 0}, 43, 4) is None
    assert loadtest_metrics.check("rest", {"requests": 40, "errors": 0}, 45, 4) is not None
  manager.stop()
  batcher.close()
