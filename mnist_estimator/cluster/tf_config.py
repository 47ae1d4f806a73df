"""The tasks of a TF_CONFIG cluster and their TF_CONFIGs, for both engines (local and Ray)."""

import socket
from typing import Any, Dict, List, Mapping, Tuple

# A TF_CONFIG `cluster`: {"chief": ["host:port"], "ps": [...], "worker": [...]}.
ClusterSpec = Dict[str, List[str]]


def free_ports(count: int) -> List[int]:
  """Returns `count` distinct free TCP ports on 127.0.0.1."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def labels(workers: int, ps: int, evaluator: bool) -> List[Tuple[str, str, int]]:
  """[(label, kind, index)] of every task in the order they start: chief, workers, ps, evaluator."""
  result = [("chief", "chief", 0)] + [(f"worker{i}", "worker", i) for i in range(workers)]
  result += [(f"ps{i}", "ps", i) for i in range(ps)]
  return result + ([("evaluator", "evaluator", 0)] if evaluator else [])


def spec_from(addresses: Mapping[str, str]) -> ClusterSpec:
  """The TF_CONFIG `cluster` from {label: "host:port"} (the evaluator is not in it)."""
  spec = {kind: [address for label, address in addresses.items() if label.rstrip("0123456789")
                 == kind] for kind in ("chief", "ps", "worker")}
  if not spec["worker"]:
    del spec["worker"]
  return spec


def cluster_spec(workers: int, ps: int) -> ClusterSpec:
  """{"chief": [...], "ps": [...], "worker": [...]} on loopback ports."""
  trainers = [label for label, kind, _ in labels(workers, ps, False)]
  ports = free_ports(len(trainers))
  return spec_from({label: f"127.0.0.1:{port}" for label, port in zip(trainers, ports)})


def tasks(spec: ClusterSpec, evaluator: bool) -> List[Tuple[str, Dict[str, Any]]]:
  """[(label, TF_CONFIG dict)] for every task, the chief first."""
  result = [(f"{kind}{i}" if kind != "chief" else "chief",
             {"cluster": spec, "task": {"type": kind, "index": i}})
            for kind in ("chief", "worker", "ps") for i in range(len(spec.get(kind, [])))]
  if evaluator:
    result.append(("evaluator", {"cluster": spec, "task": {"type": "evaluator", "index": 0}}))
  return result
