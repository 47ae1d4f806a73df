"""serve.monitoring: TF Serving's --monitoring_config_file read as TF Serving reads it."""

import pytest

from mnist_estimator.common.errors import UsageError
from mnist_estimator.serve import monitoring


def _write(tmp_path, text, name="monitoring.config"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _refused(path):
  with pytest.raises(UsageError) as error:
    monitoring.read_file(path)
  message = str(error.value)
  assert "\n" not in message and f"--monitoring_config_file={path}" in message
  assert "e.g." in message  # the fix: what to write instead
  return message


def test_enabled_with_a_path(tmp_path):
  path = _write(tmp_path, 'prometheus_config {\n  enable: true,\n  path: "/metrics"\n}\n')
  assert monitoring.read_file(path) == monitoring.Monitoring(prometheus_path="/metrics")


def test_enabled_without_a_path_takes_tf_servings(tmp_path):
  path = _write(tmp_path, "prometheus_config: { enable: true }")
  assert monitoring.read_file(path).prometheus_path == "/monitoring/prometheus/metrics"


@pytest.mark.parametrize("text", ["", "# nothing\n", "prometheus_config { enable: false }",
                                  "prometheus_config { path: '/metrics' }"])
def test_disabled_or_empty_serves_no_page(tmp_path, text):
  assert monitoring.read_file(_write(tmp_path, text)).prometheus_path is None


@pytest.mark.parametrize("text, problem", [
    ("prometheus_config { enabled: true }",
     'PrometheusConfig" has no field named "enabled"'),
    ("prometheus { enable: true }", 'MonitoringConfig" has no field named "prometheus"'),
    ("enable: true", 'MonitoringConfig" has no field named "enable"'),
    ("prometheus_config { enable: yes }", "enable"),
])
def test_unknown_fields_and_typos_refused(tmp_path, text, problem):
  message = _refused(_write(tmp_path, text))
  assert "is not a text-format tensorflow.serving.MonitoringConfig" in message
  assert problem in message


@pytest.mark.parametrize("text", ["prometheus_config { enable: true", "prometheus_config enable",
                                  'prometheus_config { path: "/x }'])
def test_bad_syntax_refused_with_its_place(tmp_path, text):
  message = _refused(_write(tmp_path, text))
  assert "1:" in message  # the line and column of the parser's complaint


@pytest.mark.parametrize("path", ["metrics", "/metrics?x=1", "/a b"])
def test_a_path_no_request_can_reach_refused(tmp_path, path):
  config = _write(tmp_path, f"prometheus_config {{ enable: true path: '{path}' }}")
  assert "is not a URL path" in _refused(config)


def test_missing_or_binary_file_refused(tmp_path):
  assert "cannot read" in _refused(str(tmp_path / "missing.config"))
  binary = tmp_path / "binary.config"
  binary.write_bytes(b"\xff\xfe\x00prometheus")
  assert "is not text" in _refused(str(binary))


def test_message_class_is_tf_servings_proto():
  """The described messages have TF Serving's full names, fields and numbers."""
  descriptor = monitoring.MonitoringConfig.DESCRIPTOR
  assert descriptor.full_name == "tensorflow.serving.MonitoringConfig"
  assert descriptor.file.name == "tensorflow_serving/config/monitoring_config.proto"
  field = descriptor.fields_by_name["prometheus_config"]
  assert field.number == 1 and field.message_type.full_name == "tensorflow.serving.PrometheusConfig"
  fields = {f.name: f.number for f in field.message_type.fields}
  assert fields == {"enable": 1, "path": 2}
  wire = monitoring.MonitoringConfig()
  wire.prometheus_config.enable = True
  assert wire.SerializeToString() == b"\x0a\x02\x08\x01"  # field 1 { field 1: true }
