"""Shared by the serve tests: training and exporting a model, HTTP calls, test images."""

import http.client
import json
import os

import numpy as np

from mnist_estimator.run import runner
from mnist_estimator.run.spec import RunSpec

# "The same answer", equal up to float32 rounding: a batch of another size may take another
# oneDNN kernel (AVX2: a row differed from the reference batch's in the last bit).
SAME = {"rtol": 1e-5, "atol": 1e-7}


def train_and_export(data, root, model="linear", steps=10, **overrides):
  """Trains `model` on `data` and exports it; returns the SavedModel path."""
  settings = dict(batch_size=32, optimizer="sgd", learning_rate=0.5, eval_batch_size=100,
                  seed=0, report=False)
  settings.update(overrides)
  spec = RunSpec.for_model(model, model_dir=os.path.join(root, "m"), steps=steps,
                           export_dir=os.path.join(root, "e"), **settings)
  return runner.run(spec, data)["export"]


def call(url, method, path, body=None, headers=None, raw=False):
  """(status, parsed JSON or text, or the bytes if raw) of one request; body: a dict or bytes."""
  host = url.split("//", 1)[1]
  connection = http.client.HTTPConnection(host, timeout=60)
  if isinstance(body, (dict, list)):
    body = json.dumps(body).encode()
  connection.request(method, path, body=body, headers=headers or {})
  response = connection.getresponse()
  data = response.read()
  connection.close()
  kind = response.getheader("Content-Type", "")
  if raw:
    return response.status, data
  return response.status, json.loads(data) if kind.startswith("application/json") else data


def images(data, n):
  """The first n test images as float [n, 28, 28] in 0..1."""
  return data.x_test[:n, :, :, 0].astype(np.float32) / 255.0
