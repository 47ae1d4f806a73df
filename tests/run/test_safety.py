"""Nothing lost, nothing silently wrong: the safety matrix beside the bad-input one.

Each case runs main (in-process, helpers.run_main) on a copy of one trained model_dir,
damaged as the case says: one line, the expected exit code, and the checkpoints as they
were where the run must not write. Signals, a full disk and argv bytes run real processes.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, cli_env, run_main, run_predict  # pylint: disable=g-bad-import-order

from mnist_estimator.common import lock
from mnist_estimator.estimator import checkpoints

BASE = ["--model=dnn", "--optimizer=sgd", "--learning_rate=0.1", "--dataset=mnist_sample",
        "--noreport"]
MAIN = "mnist_estimator.main"
PREDICT = "mnist_estimator.predict"


def fingerprint(model_dir):
  """{file: sha1} of the checkpoint files and state file: what must not change."""
  names = [n for n in sorted(os.listdir(model_dir))
           if n.startswith("model.ckpt-") or n in ("checkpoint", "mnist_estimator.json")]
  return {n: hashlib.sha1(open(os.path.join(model_dir, n), "rb").read()).hexdigest()
          for n in names}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A dnn model_dir with checkpoints 0..3, and its SavedModel in export/."""
  model_dir = tmp_path_factory.mktemp("safety") / "m"
  code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--steps=3",
                          "--save_checkpoints_steps=1", "--keep_checkpoint_max=10",
                          f"--export_dir={model_dir}/export")
  assert code == 0, err
  return model_dir


def _flip(path, offset=100):
  data = bytearray(path.read_bytes())
  data[offset % len(data)] ^= 0xFF
  path.write_bytes(bytes(data))


def _damage(kind):
  """Functions damaging a model_dir copy, by kind."""
  newest = lambda d, ext: d / f"model.ckpt-3.{ext}"
  return {
      None: lambda d: None,
      "no state": lambda d: (d / "checkpoint").unlink(),
      "garbled state": lambda d: (d / "checkpoint").write_text("model_checkpoint_path {{{"),
      "flipped": lambda d: _flip(newest(d, "data-00000-of-00001")),
      "truncated": lambda d: newest(d, "data-00000-of-00001").write_bytes(
          newest(d, "data-00000-of-00001").read_bytes()[:50]),
      "no index": lambda d: newest(d, "index").unlink(),
      "empty record": lambda d: (d / "mnist_estimator.json").write_text(""),
      "truncated record": lambda d: (d / "mnist_estimator.json").write_text('{"model": "dn'),
      "no record": lambda d: (d / "mnist_estimator.json").unlink(),
  }[kind]


def cases(tmp, trained):
  """(name, damage, module, argv, words of the one line, exit code, may write checkpoints)."""
  (tmp / "a_file").write_text("x")
  (tmp / "latin.flags").write_bytes("--steps=4\n# caf\xe9\n".encode("latin-1"))
  (tmp / "empty_npz").mkdir()
  np.savez(tmp / "empty_npz" / "mnist.npz", x_train=np.zeros((0, 28, 28), np.uint8),
           y_train=np.zeros(0, np.uint8), x_test=np.zeros((0, 28, 28), np.uint8),
           y_test=np.zeros(0, np.uint8))
  (tmp / "npy_npz").mkdir()
  np.save(tmp / "npy_npz" / "m.npy", np.zeros((3, 28, 28), np.uint8))
  os.rename(tmp / "npy_npz" / "m.npy", tmp / "npy_npz" / "mnist.npz")
  np.save(tmp / "x.npy", np.zeros((3, 28, 28), np.uint8) + np.eye(28, dtype=np.uint8) * 255)
  np.save(tmp / "labels.npy", np.array([1, 2, 40]))
  np.savez(tmp / "empty.npz", x=np.zeros((0, 28, 28), np.uint8))
  tf.io.write_file(str(tmp / "clear.png"), tf.io.encode_png(np.zeros((28, 28, 4), np.uint8)))
  export = f"{trained}/export"
  ev, wt = ["--mode=evaluate"], ["--mode=weights"]
  return [
      ("state file deleted", "no state", MAIN, ["--steps=5"], ["rebuilt", "model.ckpt-3"], 0,
       True),
      ("state file garbled", "garbled state", MAIN, ev, ["garbled", "rebuilt"], 0, True),
      ("flipped: train", "flipped", MAIN, ["--steps=5"], ["model.ckpt-3", "Checksum",
                                                           "--fallback_checkpoint"], 2, False),
      ("flipped: evaluate", "flipped", MAIN, ev, ["model.ckpt-3", "Checksum"], 2, False),
      ("flipped: export", "flipped", MAIN, ["--mode=export", f"--export_dir={tmp}/x"],
       ["model.ckpt-3"], 2, False),
      ("flipped: predict", "flipped", MAIN, ["--mode=predict"], ["model.ckpt-3"], 2, False),
      ("flipped: weights", "flipped", MAIN, wt, ["model.ckpt-3"], 2, False),
      ("flipped: fallback", "flipped", MAIN, [*ev, "--fallback_checkpoint"],
       ["falling back to model.ckpt-2"], 0, True),
      ("truncated newest", "truncated", MAIN, ev, ["model.ckpt-3"], 2, False),
      ("newest .index missing", "no index", MAIN, ev, ["model.ckpt-3.index"], 2, False),
      ("empty record", "empty record", MAIN, ev, ["mnist_estimator.json"], 2, False),
      ("truncated record", "truncated record", MAIN, ["--steps=5"], ["mnist_estimator.json"], 2,
       False),
      ("another model, no record", "no record", MAIN, ["--model=cnn", "--steps=5"],
       ["holds a checkpoint of another network", "dense/kernel [784, 10] there"], 2, False),
      ("huge batch", None, MAIN, ["--steps=5", "--batch_size=1000000000"], ["--batch_size"], 2,
       False),
      ("huge eval batch", None, MAIN, [*ev, "--eval_batch_size=1000000000"],
       ["--eval_batch_size"], 2, False),
      ("weights_out without .npz", None, MAIN, [*wt, f"--weights_out={tmp}/w"], [".npz"], 2,
       False),
      ("weights_out in a missing folder", None, MAIN, [*wt, f"--weights_out={tmp}/no/w.npz"],
       ["does not exist"], 2, False),
      ("weights_png_dir is a file", None, MAIN, [*wt, f"--weights_png_dir={tmp}/a_file"],
       ["a_file"], 2, False),
      ("latin-1 flagfile", None, MAIN, [f"--flagfile={tmp}/latin.flags"], ["latin.flags",
                                                                              "UTF-8"], 2, False),
      ("warm start of another shape", None, MAIN,
       ["--hidden_units=7", f"--model_dir={tmp}/ws", "--warm_start_from=MODEL_DIR"],
       ["--warm_start_from", "--warm_start_vars"], 2, False),
      ("empty npz arrays", None, MAIN, ["--dataset=mnist", f"--data_dir={tmp}/empty_npz"],
       ["holds no images"], 2, False),
      ("an .npy named .npz", None, MAIN, ["--dataset=mnist", f"--data_dir={tmp}/npy_npz"],
       ["mnist.npz"], 2, False),
      ("predict: labels out of range", None, PREDICT,
       [export, str(tmp / "x.npy"), {"labels": f"{tmp}/labels.npy"}], ["0..9"], 2, False),
      ("predict: empty npz", None, PREDICT, [export, str(tmp / "empty.npz")], ["no images"], 2,
       False),
      ("predict: transparent blank", None, PREDICT, [export, str(tmp / "clear.png")],
       ["blank"], 2, False),
  ]


def _case_dir(tmp, name):
  return tmp / "dirs" / hashlib.sha1(name.encode()).hexdigest()[:8]


def _run_case(case, tmp, trained):
  name, damage, module, argv, _, _, _ = case
  model_dir = _case_dir(tmp, name)
  shutil.copytree(trained, model_dir)
  _damage(damage)(model_dir)
  before = fingerprint(model_dir)
  if module == MAIN:
    argv = [a.replace("MODEL_DIR", str(model_dir)) for a in argv]
    result = run_main(*BASE, f"--model_dir={model_dir}", *argv)
  else:
    options = argv[-1] if isinstance(argv[-1], dict) else {}
    result = run_predict(*[a for a in argv if not isinstance(a, dict)], **options)
  return result, before, fingerprint(model_dir)


def test_safety_matrix(trained, tmp_path):
  matrix = cases(tmp_path, trained)
  assert len({case[0] for case in matrix}) == len(matrix), "case names are unique"
  assert len(matrix) == 25
  failures = []
  for case in matrix:
    name, _, _, _, words, want, may_write = case
    (code, out, err), before, after = _run_case(case, tmp_path, trained)
    lines = [line for line in err.splitlines() + out.splitlines()
             if all(word in line for word in words)]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    ok = (code == want and len(lines) == 1 and len(errors) == (want != 0)
          and (may_write or before == after))
    if not ok:
      failures.append(f"{name}: exit {code} (want {want}), intact {before == after}: "
                      f"{err[-1500:]}")
    if name == "state file deleted":
      rebuilt = out
  assert not failures, "\n\n".join(failures)
  # Training after the rebuilt state file went on from step 3 (not 0) to the --steps=5 asked.
  assert "global_step 5" in rebuilt
  latest = tf.train.latest_checkpoint(str(_case_dir(tmp_path, "state file deleted")))
  assert latest.endswith("model.ckpt-5")


def test_a_relative_model_dir_state_file_is_read_as_written(trained, tmp_path, monkeypatch):
  """get_checkpoint_state joins a relative entry to the model_dir itself: not joined twice."""
  shutil.copytree(trained, tmp_path / "rel" / "m")
  monkeypatch.chdir(tmp_path)
  announced = []
  prefix = checkpoints.ensure("rel/m", announce=announced.append)
  assert not announced  # no "names rel/m/rel/m/model.ckpt-N, which is not on disk; rebuilt"
  assert prefix is None or os.path.exists(f"{prefix}.index")


def test_non_utf8_model_dir(tmp_path):
  # How Python hands main an argument of bytes that are not UTF-8.
  arg = os.fsdecode(b"--model_dir=" + os.fsencode(str(tmp_path)) + b"/caf\xe9")
  code, _, err = run_main(*BASE, arg)
  assert code == 2 and "not valid UTF-8" in err and "caf\\xe9" in err


def test_bad_tf_config(tmp_path, monkeypatch):
  monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
  code, _, err = run_main(*BASE, f"--model_dir={tmp_path}/m", "--steps=2")
  assert code == 2 and "TF_CONFIG" in err.splitlines()[-1]


def _hand_made_cluster(monkeypatch, task_type):
  """TF_CONFIG of a task in a chief/worker/ps cluster started by hand (nothing listens)."""
  cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                              "task": {"type": task_type, "index": 0}}))


# Under TF_CONFIG, a train_distribute made every task its chief: each reached for model_dir's
# lock and died on "in use by pid N", another task of the same job.
@pytest.mark.parametrize("task_type", ["chief", "worker", "ps"])
def test_a_hand_made_cluster_task_refuses_distribute(tmp_path, monkeypatch, task_type):
  _hand_made_cluster(monkeypatch, task_type)
  code, _, err = run_main(*BASE, f"--model_dir={tmp_path}/m", "--steps=2",
                          "--distribute=mirrored", "--input=tfdata")
  assert code == 2 and err.strip().splitlines()[-1].startswith(
      "error: --distribute=mirrored replicates the model over one process's devices")
  assert not os.path.exists(tmp_path / "m" / "checkpoint")


def test_a_hand_made_cluster_ps_refuses_another_mode(tmp_path, monkeypatch):
  _hand_made_cluster(monkeypatch, "ps")
  code, _, err = run_main(*BASE, f"--model_dir={tmp_path}/m", "--steps=2")  # main's train
  assert code == 2 and err.strip().splitlines()[-1] == (
      "error: a cluster's ps tasks run only under --mode=train_and_evaluate, not --mode=train: "
      "start every task of the cluster with --mode=train_and_evaluate")


def test_second_writer_is_refused_and_a_stale_lock_taken_over(trained, tmp_path):
  model_dir = tmp_path / "m"
  shutil.copytree(trained, model_dir)
  before = fingerprint(model_dir)
  held = lock.acquire(str(model_dir))  # flock: a second open file in this process conflicts
  try:
    code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--steps=5")
    assert code == 2 and f"pid {os.getpid()}" in err and "in use" in err
    assert fingerprint(model_dir) == before
    code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--mode=evaluate")
    assert code == 0, err  # readers are not blocked
  finally:
    held.close()  # as if its process had been killed: the lock file stays, unlocked
  assert (model_dir / lock.LOCK_FILE).exists()
  code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--steps=5")
  assert code == 0, err


def test_ctrl_c_saves_a_checkpoint_and_exits(tmp_path):
  signum = signal.SIGINT
  model_dir = tmp_path / "m"
  proc = subprocess.Popen([sys.executable, "-m", MAIN, *BASE, f"--model_dir={model_dir}",
                           "--steps=1000000", "--log_every_n_iter=5"], cwd=ROOT, env=cli_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  output = []
  for line in proc.stdout:
    output.append(line)
    match = re.match(r"step ([\d,]+)/", line)  # a progress line (plain: not a terminal)
    if match and int(match.group(1).replace(",", "")) >= 10:
      proc.send_signal(signum)
      break
  output += proc.stdout.readlines()
  assert proc.wait(timeout=120) == 128 + signum, "".join(output[-20:])
  text = "".join(output)
  assert "Traceback" not in text
  lines = [line for line in output if line.startswith("interrupted at step")]
  assert len(lines) == 1 and "checkpoint saved" in lines[0], text[-2000:]
  step = int(lines[0].split()[3].rstrip(";"))
  assert step >= 10
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert latest.endswith(f"model.ckpt-{step}") and checkpoints.verify(latest) is None


def test_sigterm_stops_at_the_next_step_and_saves(tmp_path):
  """The same stop in this process: SIGTERM once the handler is in, then exit code 143."""
  from mnist_estimator.estimator import interrupts  # pylint: disable=g-import-not-at-top

  def send_when_training():
    """SIGTERM once this run's handler is in and it has run a step (not before: a signal
    taken before training begins would be forgotten by StopOnSignal.begin)."""
    deadline = time.time() + 120
    while (signal.getsignal(signal.SIGTERM) is not interrupts._handler  # pylint: disable=protected-access
           or interrupts._received["step"] is None):  # pylint: disable=protected-access
      if time.time() > deadline:
        return
      time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)

  sender = threading.Thread(target=send_when_training, daemon=True)
  sender.start()
  code, _, err = run_main(*BASE, f"--model_dir={tmp_path}/m", "--steps=1000000")
  sender.join()
  assert code == 143, err[-2000:]
  lines = [line for line in err.splitlines() if line.startswith("interrupted at step")]
  assert len(lines) == 1 and "checkpoint saved" in lines[0]
  step = int(lines[0].split()[3].rstrip(";"))
  latest = tf.train.latest_checkpoint(str(tmp_path / "m"))
  assert latest.endswith(f"model.ckpt-{step}") and checkpoints.verify(latest) is None


def test_second_ctrl_c_exits_at_once_and_keeps_the_last_checkpoint(tmp_path):
  model_dir = tmp_path / "m"
  proc = subprocess.Popen([sys.executable, "-m", MAIN, *BASE, f"--model_dir={model_dir}",
                           "--steps=1000000", "--log_every_n_iter=5",
                           "--save_checkpoints_steps=50"], cwd=ROOT, env=cli_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  for line in proc.stdout:
    match = re.match(r"step ([\d,]+)/", line)
    if match and int(match.group(1).replace(",", "")) >= 60:
      proc.send_signal(signal.SIGINT)
      proc.send_signal(signal.SIGINT)
      break
  text = proc.stdout.read()
  assert proc.wait(timeout=120) == 130, text[-2000:]
  assert "Traceback" not in text
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert latest and checkpoints.verify(latest) is None


@pytest.fixture
def small_disk(tmp_path):
  """A 1 MiB tmpfs, mounted for the test; skipped where mounting is not allowed."""
  mount = tmp_path / "disk"
  mount.mkdir()
  if os.geteuid() != 0 or not shutil.which("mount"):
    pytest.skip("mounting a tmpfs needs root")
  done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                        capture_output=True, text=True)
  if done.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
  yield mount
  # The in-process run's cached event-file writers hold files open there: close them first.
  tf.compat.v1.summary.FileWriterCache.clear()
  if subprocess.run(["umount", str(mount)], check=False).returncode:
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_while_checkpointing(small_disk):
  model_dir = small_disk / "m"
  code, _, err = run_main(*BASE, f"--model_dir={model_dir}", "--steps=400",
                          "--save_checkpoints_steps=2", "--keep_checkpoint_max=100")
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert code == 2, err[-2000:]
  assert len(errors) == 1 and "No space left on device" in errors[0], err[-2000:]
  assert str(model_dir) in errors[0]
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert latest and checkpoints.verify(latest) is None  # the earlier checkpoints are whole


def test_damaged_record_cache_is_rebuilt(small, tmp_path, monkeypatch):
  from mnist_estimator.inputs import record_cache as records  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(records.CACHE_ENV, str(tmp_path))
  path = records.write_records(small.x_test, small.y_test)
  good = open(path, "rb").read()
  for damage in (b"", good[:1000], good[:-1] + b"\x01"):
    with open(path, "wb") as f:
      f.write(damage)
    assert records.write_records(small.x_test, small.y_test) == path
    assert open(path, "rb").read() == good


def test_white_digit_on_transparent_png_stays_white_on_black(small, tmp_path):
  from mnist_estimator.predict import image_files  # pylint: disable=g-import-not-at-top
  digit = small.x_test[0, ..., 0]
  rgba = np.zeros((28, 28, 4), np.uint8)
  rgba[..., :3] = 255
  rgba[..., 3] = digit
  tf.io.write_file(str(tmp_path / "d.png"), tf.io.encode_png(rgba))
  images = image_files.load_images([str(tmp_path / "d.png")], (28, 28, 1))
  np.testing.assert_allclose(images[0, ..., 0], digit / 255.0, atol=2 / 255)


def test_lock_file_without_a_live_holder_is_taken_over(tmp_path):
  (tmp_path / lock.LOCK_FILE).write_text(json.dumps({"pid": 1}))
  held = lock.acquire(str(tmp_path))  # a stale file with no flock: taken over
  try:
    info = json.loads((tmp_path / lock.LOCK_FILE).read_text())
    assert info["pid"] == os.getpid()  # and it now names this process
  finally:
    held.close()
