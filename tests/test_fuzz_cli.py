"""Fuzz: malformed config files and command lines end in one ``error:`` line, exit status 2.

Invocations run in-process through click's ``CliRunner`` (fast), each in an empty
temporary folder, plus a handful as real subprocesses. Every case must end with exit
status 0 (the run was valid and was saved) or 2 with exactly one line on stderr, starting
with ``error: `` and holding no traceback. No case may leave a file behind except a
complete run directory where the run succeeded: no partial folder, no ``runs/`` after an
error.

``train`` starts from a tiny run (1 epoch, 20 samples, 4 hidden units) so that an
accepted case takes a moment; the junk overrides it. ``experiment`` cases always carry a
setting that must be refused (an unknown key, a value of the wrong type), so that none
starts a real experiment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import warm_engine  # noqa: F401 - the fixture, used below
from fuzz_support import CASE_LIMIT, fuzz_settings, timed_case
from neurosim.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--limit", "20", "--hidden", "4", "--batch", "10", "--no-progress"]
#: option values as a user might mistype them (no valid but slow value: see fuzz_support)
WORDS = ["-1", "0", "1", "3", "1e999", "nan", "inf", "-inf", "abc", "", " ", "true", "1.5", "10000000000000",
         "0x10", "1,2", "-5", "\u2603", "none", "None", "[]", "mse", "ce", "relu", "pre", "post", "float16",
         "float32", "digits", "fazil", "il", "zil", "strict", "fixedpred", "bp"]
TRAIN_OPTIONS = ["--dataset", "--data-dir", "--rule", "--hidden", "--activation", "--convention", "--loss",
                 "--epochs", "--batch", "--lr", "--seed", "--dtype", "--t-d", "--ticks", "--gamma", "--t-c",
                 "--eta", "--n", "--limit", "--out", "--config"]
MISSPELLED = ["--epoch", "--lrr", "--hiden", "-x", "--rule=", "--", "---", "--no-progres"]

pytestmark = pytest.mark.usefixtures("warm_engine")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _check_result(code: int, stdout: str, stderr: str, root: Path, before: list[str]) -> str:
    """The contract of one invocation; returns the outcome to count."""
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert code in (0, 2), (code, stdout, stderr)
    after = _files(root)
    assert not [f for f in after if ".partial" in f or f.endswith(".tmp")], after
    if code == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert after == before, f"an error left files behind: {sorted(set(after) - set(before))}"
        return "error (exit 2)"
    return "accepted (exit 0)"


def _invoke(args: list[str], root: Path, env: dict | None = None) -> str:
    before = _files(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(main, args, catch_exceptions=True, env=env)
    finally:
        os.chdir(cwd)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return _check_result(result.exit_code, result.stdout, result.stderr, root, before)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(value)


toml_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-3, 6), st.sampled_from([10**7, 10**13, -(10**13)]),
              st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "builder", "size"]),
                                                                        inner, max_size=2)),
    max_leaves=4,
)
CONFIG_KEYS = [o[2:].replace("-", "_") for o in TRAIN_OPTIONS if o not in ("--config", "--out")] + [
    "model", "threads", "lr_", "epoch", "hiden", "rule "]


@fuzz_settings(120)
@given(data=st.data())
def test_fuzz_config_files(data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["toml", "toml", "toml", "bytes", "not-utf8", "cut", "directory", "missing"]))
    base = {"dataset": "digits", "epochs": 1, "limit": 20, "hidden": [4], "batch": 10}
    junk = data.draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), toml_values, min_size=1, max_size=2))
    text = "\n".join(f"{k} = {_toml_value(v)}" for k, v in {**base, **junk}.items() if k != "model") + "\n"
    if "model" in junk:
        text += "[model]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in (junk["model"] if isinstance(
            junk["model"], dict) else {"builder": junk["model"]}).items())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "run.toml"
        if how == "toml":
            config.write_text(text, encoding="utf-8")
        elif how == "bytes":
            config.write_bytes(data.draw(st.binary(max_size=30)))
        elif how == "not-utf8":
            config.write_bytes(text.encode("utf-8") + b"\xff\xfe# \xe9\n")
        elif how == "cut":
            config.write_text(text[: data.draw(st.integers(0, len(text)))], encoding="utf-8")
        elif how == "directory":
            config.mkdir()
        args = ["train", "--config", str(config), "--out", str(root / "out"), "--no-progress"]
        if how != "toml":  # what is left of the file may be valid and empty: keep the run tiny
            args += TINY
        timed_case("config file", lambda: _invoke(args, root))


@fuzz_settings(150)
@given(data=st.data())
def test_fuzz_command_lines(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3))
    extra: list[str] = []
    for _ in range(n):
        option = data.draw(st.one_of(st.sampled_from(TRAIN_OPTIONS), st.sampled_from(MISSPELLED)))
        extra.append(option)
        if data.draw(st.integers(0, 9)):  # now and then an option without its value
            extra.append(data.draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=5))))
    command = data.draw(st.sampled_from(["train", "train", "train", "experiment", "nonsense", ""]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if command == "train":
            args = ["train", *TINY, *extra]
        elif command == "experiment":  # always one setting that must be refused
            bad = data.draw(st.sampled_from(["nosuchkey=1", "samples=abc", "samples=-3", "seeds=true",
                                             "t_d=[]", "hidden=0", "samples=", "=3", "samples"]))
            name = data.draw(st.sampled_from(["table3", "rosenbaum", "table4", "ablations", "nope", ""]))
            args = ["experiment", name, "--dataset", "digits", "--set", bad, "--out", str(root / "out")]
        else:
            args = [command, *extra] if command else extra
        timed_case("command line", lambda: _invoke(args, root))


def test_real_processes() -> None:
    """A handful of real ``python -m neurosim`` runs: the same contract outside click's runner."""
    cases = [
        ["train", *TINY, "--lr", "nan"],
        ["train", *TINY, "--hidden", "0"],
        ["train", *TINY, "--rule", "fazil", "--ticks", "10000000000000"],
        ["train", *TINY, "--config", "missing.toml"],
        ["train", *TINY, "--epochs", "abc"],
        ["experiment", "table3", "--set", "nosuchkey=1"],
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args in cases:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)

            def run() -> str:
                before = _files(root)
                proc = subprocess.run([sys.executable, "-m", "neurosim", *args], cwd=root, env=env,
                                      capture_output=True, text=True, timeout=2 * CASE_LIMIT)
                return _check_result(proc.returncode, proc.stdout, proc.stderr, root, before)

            assert timed_case("command line (subprocess)", run, limit=2 * CASE_LIMIT) == "error (exit 2)", args
