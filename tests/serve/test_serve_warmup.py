"""serve.warmup replays a version's tf_serving_warmup_requests as TF Serving 2.15.1 does.

Rules and texts: tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc (the file,
its records, the maximum, DATA_LOSS) and saved_model_warmup.cc (one request per log type).
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from serve_helpers import images
from tensorflow_serving.apis import inference_pb2, predict_pb2, prediction_log_pb2

from mnist_estimator.serve import servable as servable_lib
from mnist_estimator.serve import status, warmup


@pytest.fixture(scope="module")
def version(tiny_export, tmp_path_factory):
  """Version 1 of the tiny export, copied so the test can write its assets.extra, loaded."""
  path = tmp_path_factory.mktemp("warmup") / "1"
  shutil.copytree(os.path.join(tiny_export, "1"), path)
  loaded = servable_lib.Servable(str(path), 1)
  yield loaded
  loaded.close()


@pytest.fixture
def write(version):
  """write(*records): the version's warmup file of these records (PredictionLog or bytes)."""
  path = warmup.path_of(version)

  def writer(*records):
    with tf.io.TFRecordWriter(path) as f:
      for record in records:
        f.write(record if isinstance(record, bytes) else record.SerializeToString())
    return path
  yield writer
  if os.path.exists(path):
    os.remove(path)


def _predict_log(x):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
  return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
      request=request))


def _multi_inference_log(x):
  request = inference_pb2.MultiInferenceRequest()
  task = request.tasks.add()
  task.model_spec.name, task.model_spec.signature_name = "mnist", "examples:classify"
  task.method_name = "tensorflow/serving/classify"
  example = request.input.example_list.examples.add()
  example.features.feature["x"].float_list.value.extend(x.ravel().tolist())
  return prediction_log_pb2.PredictionLog(
      multi_inference_log=prediction_log_pb2.MultiInferenceLog(request=request))


def test_no_file_is_no_warmup(version):
  """"No warmup data file found": having warmup data is optional, OK."""
  assert warmup.replay(version) == 0


def test_good_records_are_replayed(version, write, small):
  x = images(small, 1)
  write(_predict_log(x), _multi_inference_log(x), prediction_log_pb2.PredictionLog())
  assert warmup.replay(version) == 3  # a log of no type runs nothing, and counts (default:)


def test_a_failing_request_fails_the_load_with_its_status(version, write, small):
  """RunWarmupRequest's TF_RETURN_IF_ERROR(RunPredict(...)): Session::Run's SetArgs text."""
  write(_predict_log(images(small, 1)), _predict_log(images(small, 1).astype(np.float64)))
  with pytest.raises(status.ApiError) as caught:
    warmup.replay(version)
  assert (caught.value.code, caught.value.message) == (
      status.INVALID_ARGUMENT, "Expects arg[0] to be float but double is provided")


def test_a_record_that_is_no_prediction_log(version, write):
  path = write(b"\xff\xff not a proto")
  with pytest.raises(status.ApiError) as caught:
    warmup.replay(version)
  assert caught.value.code == status.INVALID_ARGUMENT
  assert caught.value.message.startswith("Failed to parse warmup record: ")
  assert caught.value.message.endswith(f" from {path}")


def test_a_log_type_it_does_not_replay(version, write):
  """session_run_log is LogTypeCase 5: "Unsupported log_type for warmup: 5" (UNIMPLEMENTED)."""
  write(prediction_log_pb2.PredictionLog(session_run_log=prediction_log_pb2.SessionRunLog()))
  with pytest.raises(status.ApiError) as caught:
    warmup.replay(version)
  assert (caught.value.code, caught.value.message) == (
      status.UNIMPLEMENTED, "Unsupported log_type for warmup: 5")


def test_more_than_1000_records(version, write, small):
  """kMaxNumRecords = 1000: the 1001st record runs, then the count over the maximum fails."""
  path = write(*[_predict_log(images(small, 1))] * (warmup.MAX_RECORDS + 1))
  with pytest.raises(status.ApiError) as caught:
    warmup.replay(version)
  assert caught.value.message == f"Number of warmup records exceeds the maximum (1000) at {path}"
  write(*[_predict_log(images(small, 1))] * warmup.MAX_RECORDS)
  assert warmup.replay(version) == warmup.MAX_RECORDS


def test_a_file_that_is_not_tfrecord_is_data_loss(version, write):
  path = write()
  with open(path, "wb") as f:
    f.write(b"hello, this is not a TFRecord file\n")
  with pytest.raises(status.ApiError) as caught:
    warmup.replay(version)
  assert (caught.value.code, caught.value.message) == (
      "DATA_LOSS", "corrupted record at 0 (Is this even a TFRecord file?). Please verify your "
      "warmup data is in TFRecord format.")
