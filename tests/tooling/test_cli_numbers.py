"""Every numeric flag of the ``agentstate`` command is range-checked while the arguments are
parsed: a bad number is a usage error (exit 2) that names the flag's own unit, never a traceback,
an exit 1 from deep inside, or a demo that runs the machine out of memory."""

from __future__ import annotations

import argparse

import pytest

from agentstate import cli

# (command and its other arguments, flag, values refused, the unit the message must name)
REFUSED = [
    (["stats", "x.db"], "--warn-mb", ["1e400", "inf", "nan", "0", "-1", "1e10", "many"], "MB"),
    (["stats", "x.db"], "--largest", ["-1", "0", "1.5", "1e30", str(2**63), "nan", "five"], ""),
    (["cleanup", "x.db"], "--recorded-older-than-days", ["1e9", "1e308", "1e400", "nan", "-1", "36500.5"], "days"),
    (["cleanup", "x.db"], "--messages-older-than-days", ["1e9", "inf", "-0.5"], "days"),
    (["cleanup", "x.db"], "--keep-last-messages", ["0", "-1", "2.5", str(2**63), "1e400"], ""),
    (["cleanup", "x.db"], "--keep-last-events", ["0", "-3", str(10**30)], ""),
    (["cleanup", "x.db"], "--batch-size", ["0", "-1", str(2**63), "1e20"], ""),
    (["demo"], "--tasks", ["0", "-1", "1e20", str(10**20), "100001", "2.5"], ""),
]


def _parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


@pytest.mark.parametrize(("command", "flag", "values", "unit"), REFUSED, ids=[f"{c[0][0]} {c[1]}" for c in REFUSED])
def test_a_bad_number_is_a_usage_error_that_names_the_flag_and_its_unit(
    command: list[str], flag: str, values: list[str], unit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in values:
        with pytest.raises(SystemExit) as exited:
            _parse([*command, f"{flag}={value}"])
        assert exited.value.code == 2, f"{flag} {value} was accepted"
        error = capsys.readouterr().err.splitlines()[-1]
        assert f"argument {flag}" in error and repr(value) in error, error
        assert unit in error and "seconds" not in error and "inf" not in error.replace(repr(value), ""), error


def test_numbers_in_range_are_taken_in_the_flags_unit() -> None:
    args = _parse(["stats", "x.db", "--warn-mb", "1e9", "--largest", "1e3"])
    assert args.warn_mb == 1e9 and args.largest == 1000 and isinstance(args.largest, int)
    args = _parse(["cleanup", "x.db", "--recorded-older-than-days", "36500", "--messages-older-than-days", "0",
                   "--keep-last-messages", "1", "--keep-last-events", str(2**63 - 1), "--batch-size", "1"])  # fmt: skip
    assert (args.recorded_older_than_days, args.messages_older_than_days) == (36500, 0)
    assert (args.keep_last_messages, args.keep_last_events, args.batch_size) == (1, 2**63 - 1, 1)
    assert _parse(["demo", "--tasks", "100000"]).tasks == 100_000
    assert _parse(["stats", "x.db", "--warn-mb", "0.5"]).warn_mb == 0.5
