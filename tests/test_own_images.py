"""One contract from training to serving, on folders of image files in many formats.

For a folder model of each kind (gray, RGB, gray resized with --image_size), evaluate, predict
on the test set's own files (default flags), and serving (REST b64 and gRPC bytes) give the
same answers: every path decodes with data/decode.py's ops.
"""

import base64
import http.client
import io
import json
import os

import grpc
import helpers
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mnist_estimator.predict import main as predict_main
from mnist_estimator.serve import batching, server

# (format, PIL save arguments, mode): a format per image, in turn.
FORMATS = [("png", {}, None), ("jpg", {"quality": 95}, None), ("png", {}, "I;16"),
           ("png", {}, "P"), ("png", {}, "RGBA"), ("bmp", {}, None), ("webp", {"lossless": True},
                                                                         None)]
PER_CLASS = {"train": 24, "test": 8}


def _save(pixels, path, rgb, index):
  """One digit (uint8 [h, w]) as a file of the index's format (and colour, for rgb)."""
  ext, kwargs, mode = FORMATS[index % len(FORMATS)]
  image = Image.fromarray(pixels)
  if rgb:  # the digit in a colour of its own, on black
    tint = np.array([(index * 67) % 200 + 55, 255, (index * 29) % 255], np.float32) / 255
    image = Image.fromarray((pixels[..., None] * tint).astype(np.uint8))
  if mode == "I;16":
    image = Image.fromarray(pixels.astype(np.uint16) * 257) if not rgb else image
  elif mode:
    image = image.convert(mode)
  path = f"{path}.{ext}"
  image.save(path, **kwargs)
  return path


def _folder(sample, root, rgb=False, size=None):
  """root/{train,test}/<digit>/NNN.<ext>: real MNIST digits, every format in turn."""
  counts = {"train": {}, "test": {}}
  for split, x, y in (("train", sample.x_train, sample.y_train),
                      ("test", sample.x_test, sample.y_test)):
    for i, (pixels, label) in enumerate(zip(x[..., 0], y)):
      if counts[split].get(label, 0) >= PER_CLASS[split]:
        continue
      counts[split][label] = counts[split].get(label, 0) + 1
      folder = os.path.join(root, split, str(label))
      os.makedirs(folder, exist_ok=True)
      if size:
        pixels = np.asarray(Image.fromarray(pixels).resize(size[::-1], Image.BICUBIC))
      _save(pixels, os.path.join(folder, f"{i:04d}"), rgb, i)
  return str(root)


def _test_files(root):
  files, labels = [], []
  for label in sorted(os.listdir(os.path.join(root, "test"))):
    folder = os.path.join(root, "test", label)
    for name in sorted(os.listdir(folder)):
      files.append(os.path.join(folder, name))
      labels.append(int(label))
  return files, np.array(labels)


def _served_accuracy(export, files, labels):
  """(REST accuracy, gRPC accuracy) of the files' bytes through image_bytes:serving_default."""
  app, manager, batcher = server.build(export, poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  encoded = [open(path, "rb").read() for path in files]
  # WebP is not among what TF's decoder reads: a client sends such a file as PNG, as predict
  # does (data/decode.file_bytes), and TF Serving would need the same.
  encoded = [_png(data) if path.endswith(".webp") else data for path, data in zip(files, encoded)]
  with server.BackgroundServer(app, manager, batcher) as background:
    body = {"signature_name": "image_bytes:serving_default",
            "instances": [{"b64": base64.b64encode(data).decode()} for data in encoded]}
    code, reply = _post(background.url, body)
    assert code == 200, reply
    rest = np.mean([p["classes"] for p in reply["predictions"]] == labels)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.model_spec.signature_name = "image_bytes:serving_default"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(encoded, dtype=tf.string))
    with grpc.insecure_channel(background.grpc_target) as channel:
      reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
    grpc_accuracy = np.mean(tf.make_ndarray(reply.outputs["classes"]) == labels)
  manager.stop()
  batcher.close()
  return rest, grpc_accuracy


def _png(data):
  out = io.BytesIO()
  Image.open(io.BytesIO(data)).save(out, "PNG")
  return out.getvalue()


def _post(url, body):
  """(status, JSON) of a REST predict."""
  connection = http.client.HTTPConnection(url.split("//", 1)[1], timeout=120)
  connection.request("POST", "/v1/models/mnist:predict", body=json.dumps(body).encode())
  response = connection.getresponse()
  reply = json.loads(response.read())
  connection.close()
  return response.status, reply


@pytest.mark.parametrize("kind", ["gray", "rgb", "gray_resized"])
def test_evaluate_predict_and_serve_agree(sample, tmp_path, kind):
  root = _folder(sample, tmp_path / "digits", rgb=kind == "rgb",
                 size=(40, 36) if kind == "gray_resized" else None)
  argv = ["--model=dnn", "--hidden_units=64", f"--dataset=folder:{root}", "--steps=120",
          "--batch_size=32", "--optimizer=adam", "--learning_rate=0.003", "--seed=1",
          "--noreport", "--precision=fp32", f"--model_dir={tmp_path / 'm'}",
          f"--export_dir={tmp_path / 'e'}"]
  if kind == "gray_resized":
    argv.append("--image_size=28x28")
  code, out, err = helpers.run_main(*argv)
  assert code == 0, err
  evaluated = float(out.split("eval on ")[1].split("accuracy ")[1].split(",")[0])
  assert evaluated > 0.5  # it learned something, so agreement means something
  files, labels = _test_files(root)
  result = predict_main.predict_files(str(tmp_path / "e"), files, out=io.StringIO())
  assert np.mean(result["classes"] == labels) == pytest.approx(evaluated, abs=1e-6)
  rest, grpc_accuracy = _served_accuracy(str(tmp_path / "e"), files, labels)
  assert rest == pytest.approx(evaluated, abs=1e-6) and grpc_accuracy == rest
