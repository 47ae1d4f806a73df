"""README.md and docs/*.md: their commands parse, the short ones run, no table has a hole."""

import contextlib
import glob
import importlib
import importlib.util
import inspect
import os
import re
import shlex
import subprocess
import sys

from absl import flags as absl_flags
import helpers
import pytest

from mnist_estimator import flagdefs

DOCS = ["README.md"] + sorted(os.path.relpath(path, helpers.ROOT) for path in
                              glob.glob(os.path.join(helpers.ROOT, "docs", "*.md")))
# Each program: where its flags are defined (a module with define_flags()).
PROGRAMS = {"mnist_estimator.main": "mnist_estimator.flagdefs",
            "mnist_estimator.predict": "mnist_estimator.predict.main",
            "mnist_estimator.serve": "mnist_estimator.serve.main",
            "mnist_estimator.cluster": "mnist_estimator.cluster.main"}
CONSOLE_SCRIPTS = {"mnist-estimator": "mnist_estimator.main",
                   "mnist-estimator-predict": "mnist_estimator.predict",
                   "mnist-estimator-serve": "mnist_estimator.serve"}
# absl's own flags, which every program takes: name -> boolean.
ABSL_FLAGS = {"help": True, "helpshort": True, "helpfull": True, "helpxml": True,
              "flagfile": False, "undefok": False, "verbosity": False, "v": False,
              "logtostderr": True, "alsologtostderr": True, "log_dir": False}
SHELL_OPERATORS = {"&", "&&", "|", "||", ";", ">", ">>", "2>", "2>&1", "<"}
PLACEHOLDER_CELLS = {"", "...", "…", "tbd", "?", "todo"}
MAX_RUNS = 3  # the suite's time: each run is a TensorFlow process of a few seconds
MAX_RUN_STEPS = 20

_COMMAND = re.compile(r"python3? -m (mnist_estimator(?:\.\w+)*)(.*)|"
                      r"(?<![\w/.-])(mnist-estimator(?:-predict|-serve)?)(?![\w-])(.*)")


def _read(doc):
  with open(os.path.join(helpers.ROOT, doc), encoding="utf-8") as f:
    return f.read()


def _code_lines(text):
  """(line number, text) of every shell command line: fenced blocks (not python) and inline code.

  A fenced block's lines ending in a backslash are joined with the next; an inline code span
  may wrap over lines.
  """
  found, prose, fence, language = [], [], None, ""
  lines = text.splitlines()
  i = 0
  while i < len(lines):
    line = lines[i]
    if line.lstrip().startswith("```"):
      fence, language = (None, "") if fence else (i, line.strip()[3:].strip())
      prose.append((i + 1, ""))
    elif fence is not None:
      start = i
      while line.endswith("\\") and i + 1 < len(lines):
        i += 1
        line = line[:-1] + " " + lines[i].strip()
      if language not in ("python", "py"):
        found.append((start + 1, line))
      prose.extend((n + 1, "") for n in range(start, i + 1))
    else:
      prose.append((i + 1, line))
    i += 1
  # Inline code spans of the prose, possibly wrapping: the line where each starts.
  joined, starts = "", []
  for number, line in prose:
    starts.append((len(joined), number))
    joined += line + "\n"
  for span in re.finditer(r"`([^`]+)`", joined):
    number = max(n for offset, n in starts if offset <= span.start())
    found.append((number, span.group(1).replace("\n", " ")))
  return found


def doc_commands():
  """(doc, line, program module, the command's words after the module) of every doc command."""
  commands = []
  for doc in DOCS:
    for number, line in _code_lines(_read(doc)):
      for match in _COMMAND.finditer(line):
        if match.group(1):
          module, rest = match.group(1), match.group(2)
        else:
          module, rest = CONSOLE_SCRIPTS[match.group(3)], match.group(4)
        commands.append((doc, number, module, rest))
  return commands


COMMANDS = doc_commands()


def _words(rest):
  """The command's words up to a shell operator (`&`, `|`, `>`, ...); comments dropped."""
  words = []
  for word in shlex.split(rest, comments=True):
    if word in SHELL_OPERATORS:
      break
    words.append(word)
  return words


@contextlib.contextmanager
def _defining_into(flag_values):
  """absl's DEFINE_* (and the rest that take flag_values) write into `flag_values` meanwhile.

  A program's define_flags() declares on absl's global FLAGS, where main's flags already are
  (conftest), and several programs share names (--batch_size, --model_dir): each gets its own.
  """
  saved = {}
  for name, function in vars(absl_flags).items():
    if callable(function) and not inspect.isclass(function):
      try:
        parameters = inspect.signature(function).parameters
      except (TypeError, ValueError):
        continue
      if "flag_values" in parameters:
        saved[name] = function
  def into(function):
    def call(*args, **kwargs):
      kwargs["flag_values"] = flag_values
      return function(*args, **kwargs)
    return call
  saved["FLAGS"] = absl_flags.FLAGS
  try:
    for name, function in saved.items():
      setattr(absl_flags, name, flag_values if name == "FLAGS" else into(function))
    yield
  finally:
    for name, function in saved.items():
      setattr(absl_flags, name, function)


_FLAGS_CACHE = {}


def program_flags(module):
  """{flag name: boolean} of a program: its own flags and absl's."""
  if module not in _FLAGS_CACHE:
    flag_values = absl_flags.FlagValues()
    if module == "mnist_estimator.main":
      flagdefs.define_flags(flag_values)
    else:
      definer = importlib.import_module(PROGRAMS[module])  # imported before the patch
      with _defining_into(flag_values):
        definer.define_flags()
    names = {name: flag_values[name].boolean for name in flag_values}
    _FLAGS_CACHE[module] = {**ABSL_FLAGS, **names}
  return _FLAGS_CACHE[module]


def check_flags(module, words):
  """(problems, skipped) of the words given to `module`: each --flag must be one of its flags."""
  known = program_flags(module)
  problems, skipped = [], []
  for word in words:
    if word in ("...", "…"):
      skipped.append("the words after `...`")
      break
    if "$" in word:
      skipped.append(f"{word} (a shell variable)")
      continue
    if not word.startswith("-"):
      if module == "mnist_estimator.main":
        problems.append(f"{word}: main takes no arguments, only --flags")
      continue
    if not word.startswith("--"):
      if word != "-v":
        problems.append(f"{word}: not a flag of {module}")
      continue
    name, has_value, _ = word[2:].partition("=")
    if name in known:
      if not has_value and not known[name]:
        problems.append(f"{word}: --{name} takes a value (--{name}=VALUE)")
    elif name.startswith("no") and known.get(name[2:]) and not has_value:
      pass  # --noflag of a boolean
    else:
      problems.append(f"{word}: {module} has no flag --{name}")
  return problems, skipped


def _split_program(module, words):
  """[(module, words)]: the cluster's flags before `--`, main's (every task's) after it."""
  if module == "mnist_estimator.cluster" and "--" in words:
    cut = words.index("--")
    return [(module, words[:cut]), ("mnist_estimator.main", words[cut + 1:])]
  return [(module, words)]


def test_the_docs_have_commands():
  modules = {module for _, _, module, _ in COMMANDS}
  assert set(PROGRAMS) <= modules, f"no doc command of {set(PROGRAMS) - modules}"


@pytest.mark.parametrize("doc, line, module, rest", COMMANDS,
                         ids=[f"{doc}:{line}:{module.split('.')[-1]}"
                              for doc, line, module, _ in COMMANDS])
def test_a_doc_command_parses(doc, line, module, rest):
  where = f"{doc}:{line}: python -m {module}{rest}"
  try:
    spec = importlib.util.find_spec(module)
  except ModuleNotFoundError:
    spec = None
  assert spec is not None, f"{where}: no module {module}"
  assert module in PROGRAMS, f"{where}: not a program this test knows ({', '.join(PROGRAMS)})"
  try:
    words = _words(rest)
  except ValueError as e:
    pytest.fail(f"{where}: not a shell command ({e})")
  problems, skipped = [], []
  for program, program_words in _split_program(module, words):
    found, left = check_flags(program, program_words)
    problems += found
    skipped += left
  assert not problems, f"{where}:\n  " + "\n  ".join(problems)
  if skipped:
    print(f"{where}: not checked: {'; '.join(skipped)}")


def _runnable(module, words):
  """Whether a doc command is short enough to run here: --helpshort, or --steps of at most 20."""
  if module != "mnist_estimator.main" and "--helpshort" not in words:
    return False
  steps = [int(w.split("=", 1)[1]) for w in words if re.fullmatch(r"--steps=\d+", w)]
  return "--helpshort" in words or (steps and steps[-1] <= MAX_RUN_STEPS)


def runnable_commands():
  seen, runs = set(), []
  for doc, line, module, rest in COMMANDS:
    try:
      words = _words(rest)
    except ValueError:
      continue
    if _runnable(module, words) and (module, tuple(words)) not in seen:
      seen.add((module, tuple(words)))
      runs.append((f"{doc}:{line}", module, words))
  return runs


RUNS = runnable_commands()
# Run and checked flag by flag as they are by test_main.py
# (test_helpshort_lists_every_flag_by_group_with_defaults): not a second process here.
RUN_BY_TEST_MAIN = {("mnist_estimator.main", ("--helpshort",))}


def test_the_short_commands_are_few_enough_to_run():
  assert RUNS, "no doc command short enough to run (--helpshort or --steps<=20)"
  assert len(RUNS) <= MAX_RUNS, f"{len(RUNS)} short doc commands; run at most {MAX_RUNS}: {RUNS}"


SHORT_RUNS = [run for run in RUNS if (run[1], tuple(run[2])) not in RUN_BY_TEST_MAIN]


@pytest.mark.parametrize("where, module, words", SHORT_RUNS,
                         ids=[where for where, _, _ in SHORT_RUNS])
def test_a_short_doc_command_runs(where, module, words, tmp_path, monkeypatch):
  """Run from a checkout's root; a training command as main runs it after absl
  (helpers.run_main, in this process: test_main.py runs the command itself), others as they are."""
  for name in ("examples", "flags"):
    os.symlink(os.path.join(helpers.ROOT, name), tmp_path / name)
  argv = [w for w in words if not w.startswith("--model_dir=")]
  if "--helpshort" not in argv:
    argv.append(f"--model_dir={tmp_path / 'model'}")
  if module == "mnist_estimator.main" and "--helpshort" not in argv:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_ESTIMATOR_CACHE", str(tmp_path / "cache"))
    code, out, err = helpers.run_main(*argv)
  else:
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=tmp_path,
                          env=helpers.cli_env(MNIST_ESTIMATOR_CACHE=str(tmp_path / "cache")),
                          capture_output=True, text=True, timeout=120)
    code, out, err = done.returncode, done.stdout, done.stderr
  assert code == 0, f"{where}: {argv}\n{out[-2000:]}{err[-2000:]}"
  if "--helpshort" in argv:
    assert "--" in out
  else:
    assert re.search(r"eval on \d+ .* accuracy", out), out[-2000:]


def test_the_benchmark_commands_and_make_targets_exist():
  """`python -m benchmarks.NAME` is a file of benchmarks/; `make TARGET` a Makefile target."""
  with open(os.path.join(helpers.ROOT, "Makefile")) as f:
    targets = set(re.findall(r"^([\w-]+):", f.read(), re.M))
  missing = []
  for doc in DOCS:
    for number, line in _code_lines(_read(doc)):
      for name in re.findall(r"python3? -m benchmarks\.(\w+)", line):
        if not name.isupper() and not os.path.isfile(  # NAME: a placeholder
            os.path.join(helpers.ROOT, "benchmarks", f"{name}.py")):
          missing.append(f"{doc}:{number}: benchmarks/{name}.py")
      for target in re.findall(r"(?<![\w-])make ([a-z][\w-]*)", line):
        if target not in targets:
          missing.append(f"{doc}:{number}: make {target}")
  assert not missing, "\n".join(missing)


def _cells(row):
  """A markdown table row's cells; a `|` inside backticks is text, not a border."""
  cells, cell, code = [], "", False
  for char in row.strip().strip("|") if row.strip().endswith("|") else row.strip()[1:]:
    if char == "`":
      code = not code
    if char == "|" and not code:
      cells.append(cell)
      cell = ""
    else:
      cell += char
  return [*cells, cell]


def table_holes(text):
  """(line number, the row) of each table row with an empty or placeholder cell."""
  holes = []
  for number, line in enumerate(text.splitlines(), 1):
    if not line.lstrip().startswith("|"):
      continue
    cells = [cell.strip() for cell in _cells(line)]
    if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
      continue  # the header's separator
    if any(cell.lower() in PLACEHOLDER_CELLS for cell in cells):
      holes.append((number, line.strip()))
  return holes


@pytest.mark.parametrize("doc", DOCS)
def test_no_table_has_an_empty_or_placeholder_cell(doc):
  holes = table_holes(_read(doc))
  assert not holes, f"{doc}: " + "; ".join(f"line {n}: {row}" for n, row in holes)


def test_the_table_check_finds_holes():
  assert table_holes("| a | b |\n|---|---|\n| 1 | |\n| ... | 2 |\n| `x|y` | TBD |\n| 3 | 4 |") == [
      (3, "| 1 | |"), (4, "| ... | 2 |"), (5, "| `x|y` | TBD |")]


def test_the_flag_check_finds_wrong_flags():
  problems, skipped = check_flags("mnist_estimator.main",
                                  ["--model=cnn", "--noreport", "--nosteps", "--stepz=3",
                                   "--report", "--steps", "file.png", "--data_dir=$D", "...",
                                   "--whatever"])
  assert problems == ["--nosteps: mnist_estimator.main has no flag --nosteps",
                      "--stepz=3: mnist_estimator.main has no flag --stepz",
                      "--steps: --steps takes a value (--steps=VALUE)",
                      "file.png: main takes no arguments, only --flags"]
  assert skipped == ["--data_dir=$D (a shell variable)", "the words after `...`"]
  assert "model_file" in program_flags("mnist_estimator.predict")
  assert program_flags("mnist_estimator.serve")["enable_batching"] is True
  assert "workers" in program_flags("mnist_estimator.cluster")
