"""TF Serving's --monitoring_config_file: a text-format MonitoringConfig (Prometheus on or off)."""

import dataclasses
from typing import Any, Optional

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format

from mnist_estimator.common.errors import UsageError

# PrometheusExporter::kPrometheusPath (util/prometheus_exporter.cc): http_server.cc serves the
# page there when prometheus_config.enable is true and its path is empty.
DEFAULT_PATH = "/monitoring/prometheus/metrics"
EXAMPLE = "prometheus_config { enable: true path: '/monitoring/prometheus/metrics' }"


def _message_class() -> Any:
  """tensorflow.serving.MonitoringConfig from TF Serving's monitoring_config.proto.

  tensorflow-serving-api ships no monitoring_config_pb2, so the file's two messages are
  described here, in a pool of their own (the default pool may get the real file one day).
  """
  proto = descriptor_pb2.FileDescriptorProto(
      name="tensorflow_serving/config/monitoring_config.proto",
      package="tensorflow.serving", syntax="proto3")
  field = descriptor_pb2.FieldDescriptorProto
  prometheus = proto.message_type.add(name="PrometheusConfig")
  prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL,
                       json_name="enable")
  prometheus.field.add(name="path", number=2, type=field.TYPE_STRING,
                       label=field.LABEL_OPTIONAL, json_name="path")
  monitoring = proto.message_type.add(name="MonitoringConfig")
  monitoring.field.add(name="prometheus_config", number=1, type=field.TYPE_MESSAGE,
                       label=field.LABEL_OPTIONAL, json_name="prometheusConfig",
                       type_name=".tensorflow.serving.PrometheusConfig")
  pool = descriptor_pool.DescriptorPool()
  pool.Add(proto)
  descriptor = pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
  if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21 (Python 3.10+ here)
    return message_factory.GetMessageClass(descriptor)
  return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # protobuf 3.20 (3.9)


MonitoringConfig = _message_class()


@dataclasses.dataclass(frozen=True)
class Monitoring:
  """What a MonitoringConfig turns on.

  Attributes:
    prometheus_path: the REST port's path of the Prometheus page, or None (no page).
  """
  prometheus_path: Optional[str] = None


def parse(text: str, source: str = "--monitoring_config_file") -> Monitoring:
  """Reads a text-format MonitoringConfig as TF Serving does (unknown fields refused).

  Args:
    text: the file's content; empty is TF Serving's default (no Prometheus page).
    source: how the error names where the text came from.

  Returns:
    The Monitoring it asks for.

  Raises:
    UsageError: the text is not a MonitoringConfig, or its path cannot be served.
  """
  try:
    proto = text_format.Parse(text, MonitoringConfig())
  except text_format.ParseError as e:
    problem = " ".join(str(e).split()).rstrip(".")  # e.g. 1:21 : ... has no field named "x"
    raise UsageError(f"{source} is not a text-format tensorflow.serving.MonitoringConfig: "
                     f"{problem}; write e.g. \"{EXAMPLE}\"") from e
  prometheus = proto.prometheus_config
  if not prometheus.enable:
    return Monitoring()
  path = prometheus.path or DEFAULT_PATH
  # TF Serving matches a request's path, which starts with "/", against this one exactly:
  # any other path would be a page nobody can reach.
  if not path.startswith("/") or any(c.isspace() or c in "?#" for c in path):
    raise UsageError(f"{source}: prometheus_config.path {path!r} is not a URL path: use one "
                     f"that starts with '/' (without spaces, '?' or '#'), e.g. '{DEFAULT_PATH}'")
  return Monitoring(prometheus_path=path)


def read_file(path: str) -> Monitoring:
  """Reads TF Serving's --monitoring_config_file.

  Args:
    path: the file, a text-format tensorflow.serving.MonitoringConfig.

  Returns:
    The Monitoring it asks for.

  Raises:
    UsageError: the file cannot be read or is not a MonitoringConfig TF Serving would take.
  """
  source = f"--monitoring_config_file={path}"
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except OSError as e:
    raise UsageError(f"cannot read {source}: {e.strerror}: pass a text-format "
                     f"MonitoringConfig, e.g. a file holding \"{EXAMPLE}\"") from e
  except UnicodeDecodeError as e:
    raise UsageError(f"{source} is not text ({e.reason} at byte {e.start}): pass a text-format "
                     f"MonitoringConfig, e.g. a file holding \"{EXAMPLE}\"") from e
  return parse(text, source)
