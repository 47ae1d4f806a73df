"""The load test's gRPC client: bounded asyncio Predict calls with TF Serving's request proto."""

import asyncio
import statistics
import time

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def predict_request_bytes(image, model_name="mnist"):
  """A serialized PredictRequest of one [1, 28, 28] float32 image (made once, sent as bytes)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(image[None].astype("float32")))
  return request.SerializeToString()


def run_grpc(target, clients, seconds, requests, body):
  """`clients` concurrent callers of Predict, stopped after `seconds` or `requests` in all.

  Each caller has its own channel (its own HTTP/2 connection, as wrk's connections) and sends
  the pre-serialized `body` and keeps the answer as bytes, so the client spends no time on
  protos. Returns {requests, rps, p50_ms, p99_ms, errors} like run_wrk.
  """
  return asyncio.run(_run(target, clients, seconds, requests, body))


async def _run(target, clients, seconds, requests, body):
  import grpc  # pylint: disable=g-import-not-at-top
  channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
              for _ in range(clients)]
  latencies, errors, left = [], [0], [requests]
  deadline = time.monotonic() + seconds

  async def caller(channel):
    predict = channel.unary_unary(PREDICT)  # bytes in, bytes out
    while left[0] > 0 and time.monotonic() < deadline:
      left[0] -= 1
      start = time.perf_counter()
      try:
        await predict(body, timeout=10)
        latencies.append(time.perf_counter() - start)
      except grpc.RpcError:
        errors[0] += 1

  try:
    for channel in channels:
      await channel.channel_ready()
    start = time.monotonic()
    await asyncio.gather(*[caller(c) for c in channels])
    elapsed = time.monotonic() - start
  finally:
    for channel in channels:
      await channel.close()
  if not latencies:
    return {"requests": 0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": errors[0]}
  latencies.sort()
  return {"requests": len(latencies), "rps": len(latencies) / elapsed,
          "p50_ms": statistics.median(latencies) * 1e3,
          "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
          "errors": errors[0]}
