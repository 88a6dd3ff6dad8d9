"""The `genbench` command line: every option documented, --version, names that match the
library's."""

import argparse

import pytest

from genbench import cli


def subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in subparsers(sub))


def test_every_command_and_option_has_help():
    parser = cli.build_parser()
    commands = dict(subparsers(parser))
    assert {"run", "claims", "report", "compare", "data", "data status", "data fetch"} <= set(commands)
    for name, sub in [("genbench", parser), *commands.items()]:
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name}: {action.dest} has no help text"


def test_help_shows_defaults_and_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "{smoke,full}" in out and "(default: smoke)" in out and "(default: report)" in out
    assert "--threads" in out and "after `--`" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("genbench ")


def test_dataset_names_match_the_library():
    from genbench.data.sources import SOURCES

    assert set(cli._DATASETS) == set(SOURCES)


def test_run_refuses_a_bad_thread_count(tmp_path, monkeypatch, capsys):
    (tmp_path / "claims").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--threads", "0"]) == 2
    assert "--threads must be a positive number" in capsys.readouterr().err
