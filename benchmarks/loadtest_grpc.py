"""The load test's gRPC client: bounded asyncio Predict calls with TF Serving's request proto."""

import asyncio
import statistics
import time

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def predict_request_bytes(image, model_name="mnist"):
  """A serialized PredictRequest of one [28, 28] image as [1, 28, 28], or of [n, 28, 28] images.

  Made once and sent as bytes; float32 in tensor_content, as tf.make_tensor_proto writes it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  batch = image[None] if image.ndim == 2 else image
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch.astype("float32")))
  return request.SerializeToString()


def predict_once(target, body, timeout=600):
  """Seconds of one Predict of the serialized `body` (any size); raises grpc.RpcError."""
  import grpc  # pylint: disable=g-import-not-at-top
  limit = max(len(body), 4 << 20) * 2  # the answer is smaller than the request
  options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]
  with grpc.insecure_channel(target, options=options) as channel:
    grpc.channel_ready_future(channel).result(timeout=60)
    predict = channel.unary_unary(PREDICT)
    start = time.perf_counter()
    predict(body, timeout=timeout)
    return time.perf_counter() - start


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
