"""The lines a run starts with: what trains on what, the changed settings, precision, paths."""

from mnist_estimator.run import spec as spec_lib


def changed_settings(spec):
  """`name=value` for every setting that differs from the model's defaults, in field order."""
  defaults = spec_lib.RunSpec.for_model(spec.model)
  changed = []
  for name in spec_lib.field_names():
    value = getattr(spec, name)
    if not spec_lib.option(name).header and value != getattr(defaults, name):
      changed.append(f"{name}={_shown(value)}")
  return changed


def _shown(value):
  return ",".join(map(str, value)) if isinstance(value, tuple) else value


def header(spec, data, log_path=None, precision=None, model=None, adopted=(), remapped=False):
  """The lines a run starts with.

  Args:
    spec: the RunSpec.
    data: the loaded datasets.Dataset.
    log_path: where TensorFlow's own log goes, if anywhere.
    precision: a line saying which precision runs and why, if known.
    model: what a model of your own is (a logits function or a full model_fn), if it is one.
    adopted: the settings taken from the model_dir's training run (run/contract.py).
    remapped: the data's classes were put in the trained order, matched by name.

  Returns:
    A list of text lines.
  """
  h, w, c = data.image_shape
  changed = changed_settings(spec)
  lines = [f"{spec.mode} {spec.model} on {data.name}: {len(data.y_train):,} train / "
           f"{len(data.y_test):,} test images of {h}x{w}x{c}, {data.n_classes} classes; "
           f"from {data.source}",
           "settings: " + (", ".join(changed) if changed else f"{spec.model}'s defaults")]
  if adopted:
    taken = ", ".join(f"{name}={_shown(getattr(spec, name))}" for name in adopted)
    lines.append(f"from the model_dir's training run: {taken}")
  if data.class_names:
    shown = ", ".join(map(str, data.class_names[:20]))
    lines.append(f"classes: {shown}" + (", ..." if len(data.class_names) > 20 else "")
                 + (" (matched to the trained order by name)" if remapped else ""))
  if model:
    lines.append(f"model: {model}")
  if precision:
    lines.append(f"precision: {precision}")
  lines.append(f"model_dir: {spec.model_dir}")
  if log_path:
    lines.append(f"log: {log_path} (-v to show it here)")
  return lines
