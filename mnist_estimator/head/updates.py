"""Variable writes a model builds that its training step would not run (Keras' updates)."""

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

import tensorflow as tf

from mnist_estimator.common.errors import UsageError

# Ops that write a variable: assign, assign_add/sub, v[i].assign, scatter_* (ref or resource).
_WRITES = re.compile(r"Assign(Add|Sub)?(VariableOp)?|(Resource)?StridedSliceAssign|"
                     r"(Resource)?Scatter(Nd)?(Update|Add|Sub|Mul|Div|Min|Max)")


def unrun_updates(model: str, new_ops: Sequence[tf.Operation], logits: tf.Tensor,
                  created: List[tf.Variable]) -> List[tf.Operation]:
  """The variable writes among `new_ops` that neither the logits nor UPDATE_OPS run.

  In a graph, Keras layers keep their `add_update`s to themselves (for Model.fit) and put
  none in UPDATE_OPS, so BatchNormalization's moving statistics never changed. This finds
  any such write, whoever built it: an assign, or a tf.cond/function that assigns inside.

  Args:
    model: the --model name, for the error.
    new_ops: the ops the logits function built.
    logits: its output: what the training step runs.
    created: the variables it made (their initializers are no updates).

  Returns:
    An op per write to add to UPDATE_OPS: the write, or an op that runs the call holding it.

  Raises:
    UsageError: a write inside a control flow v1 cond or loop, which no op outside can run.
  """
  among = set(new_ops)
  collection = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  run = _ancestors([logits] + collection, among)
  initializers = _initializers(
      created + tf.compat.v1.global_variables() + tf.compat.v1.local_variables())
  library = _FunctionLibrary(tf.compat.v1.get_default_graph())
  updates = [op for op in new_ops if op not in run and op not in initializers
             and _writes(op.type, op.node_def.attr, library, set())]
  for op in updates:
    if op._control_flow_context is not None:  # pylint: disable=protected-access
      raise UsageError(f"--model={model} updates {op.name} inside a tf.cond or loop of "
                       "control flow v1, which the training step cannot run; do not call "
                       "tf.compat.v1.disable_control_flow_v2, or pass training= a Python bool")
  return [_runnable(op) for op in updates]


def _initializers(variables: Sequence[Any]) -> Set[tf.Operation]:
  """The ops that initialize `variables`, each replica's own under a tf.distribute strategy.

  A strategy's variable (MirroredVariable, ...) holds one variable per replica; its own
  `initializer` is a new group op at every read, so the Assign that initializes each replica
  was taken for an update, and each training step drew the weights afresh (nothing learned).
  """
  found = set()
  for variable in variables:
    for replica in getattr(variable, "values", None) or (variable,):
      found.add(getattr(replica, "initializer", None))
  return found


def _runnable(op: tf.Operation) -> tf.Operation:
  """`op` itself, or for a call (a tf.cond) an op on its outputs: what runs its writes.

  A session lowers a tf.cond into branches that run for the outputs they compute; a
  control dependency on the cond op alone runs none of a branch's writes.
  """
  if _WRITES.fullmatch(op.type) or not op.outputs:
    return op
  with tf.compat.v1.name_scope(op.name + "/"), tf.control_dependencies([op]):
    return tf.identity_n(op.outputs, name="run_update")[0].op


def _ancestors(roots: Sequence[Any], among: Set[tf.Operation]) -> Set[tf.Operation]:
  """The ops in `among` that running `roots` (ops or tensors) runs: inputs and control inputs."""
  stack = [getattr(root, "op", root) for root in roots]
  seen: Set[tf.Operation] = set()
  while stack:
    op = stack.pop()
    if op in among and op not in seen:
      seen.add(op)
      stack.extend([tensor.op for tensor in op.inputs] + list(op.control_inputs))
  return seen


class _FunctionLibrary:
  """The graph's functions by name (tf.cond branches, tf.function bodies), read on first use."""

  def __init__(self, graph: tf.Graph) -> None:
    self._graph = graph
    self._functions: Optional[Dict[str, Any]] = None  # name: its FunctionDef

  def get(self, name: str) -> Any:
    """The FunctionDef of that name, or None."""
    if self._functions is None:
      library = self._graph.as_graph_def().library
      self._functions = {f.signature.name: f for f in library.function}
    return self._functions.get(name)


def _writes(op_type: str, attrs: Mapping[str, Any], library: _FunctionLibrary,
            seen: Set[str]) -> bool:
  """Whether an op writes a variable, itself or in a function it calls (a tf.cond branch)."""
  if _WRITES.fullmatch(op_type):
    return True
  called = [value.func.name for value in attrs.values() if value.HasField("func")]
  called += [func.name for value in attrs.values() for func in value.list.func]
  return any(_function_writes(name, library, seen) for name in called)


def _function_writes(name: str, library: _FunctionLibrary, seen: Set[str]) -> bool:
  """Whether the graph's function `name` (if it is one) writes a variable."""
  if name in seen:
    return False
  seen.add(name)
  function = library.get(name)
  # In a function's body an op may also be a call of another function by its name.
  return bool(function) and any(_writes(node.op, node.attr, library, seen)
                                or _function_writes(node.op, library, seen)
                                for node in function.node_def)
