"""The converters on models other people wrote: a markdown table of what each one does with the zoo.

    KERAS_BACKEND=jax python -m benchmarks.convert_zoo [--only NAME,NAME] [--no-round-trip] [--json out.json]

Runs every model of ``tests/zoo/`` under the current Keras backend through its author's
direction and back (:mod:`tests.zoo.harness`), judges each result on a held-out batch
against the author's object, and prints:

* a table: source, direction, and for each direction "converted" with the held-out
  max |Δ logits| and its allowance (``parity.check.allowance``), or "refused" with the
  converter's line (or "ERROR" with the exception, or "ACCEPTED WRONG" with Δ);
* the goals of issue 21: the share of the convertible models that convert exactly both
  ways (goal: 85 % at least), the number accepted wrong (goal: none), and whether every
  refusal was one line;
* the machine line (CPU, cores, versions) and the date, for ``docs/convert.md``.

Exit status 1 when a goal is missed, so a script can tell.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

from benchmarks.machine import machine, machine_line

GOAL = 0.85


def cell(step) -> str:
    """One direction's result as a table cell."""
    if step.status == "converted":
        return f"converted, Δ {step.diff:.1e} (allowance {step.allowance:.1e})"
    if step.status == "accepted wrong":
        return f"**ACCEPTED WRONG**, Δ {step.diff:.2g} > {step.allowance:.1e}"
    if step.status == "not run":
        return "–"
    text = step.message.strip().replace("|", "\\|")
    text = text if step.one_line else text.replace("\n", " ⏎ ")
    label = "refused" if step.status == "refused" else "**ERROR**"
    return f"{label}{'' if step.one_line else ' (more than one line)'}: {text}"


def source_cell(outcome) -> str:
    from tests.zoo import load
    zoo = load(outcome.name)
    url = zoo.SOURCE.split(" ")[0]
    return f"[{outcome.name}]({url}) ({zoo.AUTHOR.split(':')[0]})"


def table(outcomes) -> list[str]:
    lines = ["| model (source) | direction | expected | author's direction | round trip |",
             "|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {source_cell(o)} | {o.direction} | {o.expect} | {cell(o.forward)} | {cell(o.back)} |")
    return lines


def goals(outcomes) -> tuple[list[str], bool]:
    convertible = [o for o in outcomes if o.expect == "convert"]
    exact = [o for o in convertible if o.forward.status == "converted" and o.back.status == "converted"]
    one_way = [o for o in convertible if o.forward.status == "converted"]
    wrong = [o.name for o in outcomes if "accepted wrong" in (o.forward.status, o.back.status)]
    errors = [o.name for o in outcomes if "error" in (o.forward.status, o.back.status)]
    refusals = [s for o in outcomes for s in (o.forward, o.back) if s.status == "refused"]
    long_refusals = [s for s in refusals if not s.one_line]
    expected_refused = [o for o in outcomes if o.expect == "refuse" and o.forward.status == "refused"]
    share = len(exact) / len(convertible) if convertible else 1.0
    met = share >= GOAL and not wrong and not long_refusals and not errors
    lines = [
        f"- convertible models converted exactly, both ways: {len(exact)} of {len(convertible)} ({share:.0%}; goal "
        f"{GOAL:.0%}); in the author's direction: {len(one_way)} of {len(convertible)}",
        f"- accepted wrong (differs from the author's model on the held-out batch): {len(wrong)}"
        + (f" ({', '.join(wrong)})" if wrong else "") + " (goal: none)",
        f"- refusals: {len(refusals)}, of which more than one line: {len(long_refusals)} (goal: none); "
        f"models a correct converter must refuse, refused: {len(expected_refused)} of "
        f"{len([o for o in outcomes if o.expect == 'refuse'])}; beyond the issue's list (either is right): "
        f"{', '.join(f'{o.name} {o.forward.status}' for o in outcomes if o.expect == 'either') or 'none'}",
        f"- tracebacks instead of a one-line refusal: {len(errors)}" + (f" ({', '.join(errors)})" if errors else ""),
    ]
    return lines, met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convert_zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated zoo names (default: the whole zoo)")
    parser.add_argument("--no-round-trip", action="store_true", help="convert in the author's direction only")
    parser.add_argument("--json", help="also write the outcomes to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from tests.zoo import ZOO
    from tests.zoo.harness import run
    chosen = args.only.split(",") if args.only else ZOO
    started = datetime.datetime.now(datetime.timezone.utc)
    outcomes = []
    for name in chosen:
        outcomes.append(run(name, round_trip=not args.no_round_trip))
        print(f"  {name}: {outcomes[-1].forward.status}, round trip {outcomes[-1].back.status}", file=sys.stderr,
              flush=True)
    summary, met = goals(outcomes)
    print(f"Keras backend {keras.config.backend()}, {started:%Y-%m-%d %H:%M} UTC")
    print()
    print("\n".join(table(outcomes)))
    print()
    print("\n".join(summary))
    print()
    print(machine_line(machine()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([{"name": o.name, "direction": o.direction, "expect": o.expect,
                        "forward": vars(o.forward), "back": vars(o.back)} for o in outcomes], f, indent=1, default=str)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
