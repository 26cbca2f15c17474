"""The converters on models other people wrote: a markdown table of what each one does with the zoo.

    KERAS_BACKEND=jax python -m benchmarks.convert_zoo [--only NAME,NAME] [--no-round-trip] [--no-cli] [--json jax.json]
    python -m benchmarks.convert_zoo --combine torch.json jax.json tensorflow.json

Runs every model of ``tests/zoo/`` under the current Keras backend through its author's
direction and back (:mod:`tests.zoo.harness`), judges each result on a held-out batch
against the author's object, and prints:

* a table: source, direction, and for each direction (and, for a torch model, the command
  line on its ``.pt2``: ``python -m parity convert NAME.pt2 NAME.keras``) "converted" with the held-out
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
CUT = 240  # characters of a refusal shown in the table


def cell(step) -> str:
    """One direction's result as a table cell."""
    if step.status == "converted":
        return f"converted, Δ {step.diff:.1e} (allowance {step.allowance:.1e})"
    if step.status == "accepted wrong":
        return f"**ACCEPTED WRONG**, Δ {step.diff:.2g} > {step.allowance:.1e}"
    if step.status == "not run":
        return step.message or "–"
    text = step.message.strip()
    text = text if len(text) <= CUT else text[:CUT].rstrip() + " …"  # the --json file keeps whole lines
    text = text.replace("|", "\\|")
    text = text if step.one_line else text.replace("\n", " ⏎ ")
    label = "refused" if step.status == "refused" else "**ERROR**"
    return f"{label}{'' if step.one_line else ' (more than one line)'}: {text}"


def source_cell(outcome) -> str:
    from tests.zoo import load
    zoo = load(outcome.name)
    url = zoo.SOURCE.split(" ")[0]
    return f"[{outcome.name}]({url}) ({zoo.AUTHOR.split(':')[0]})"


def table(outcomes) -> list[str]:
    lines = ["| model (source) | direction | expected | author's direction | round trip | CLI on the .pt2 |",
             "|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {source_cell(o)} | {o.direction} | {o.expect} | {cell(o.forward)} | {cell(o.back)} "
                     f"| {cell(o.cli) if o.cli is not None else '–'} |")
    return lines


def goals(outcomes) -> tuple[list[str], bool]:
    convertible = [o for o in outcomes if o.expect == "convert"]
    exact = [o for o in convertible if o.forward.status == "converted" and o.back.status == "converted"]
    one_way = [o for o in convertible if o.forward.status == "converted"]
    steps = {o.name: [s for s in (o.forward, o.back, o.cli) if s is not None] for o in outcomes}
    wrong = [name for name, done in steps.items() if any(s.status == "accepted wrong" for s in done)]
    errors = [name for name, done in steps.items() if any(s.status == "error" for s in done)]
    refusals = [s for done in steps.values() for s in done if s.status == "refused"]
    cli = [o for o in convertible if o.cli is not None]
    cli_exact = [o for o in cli if o.cli.status == "converted"]
    long_refusals = [s for s in refusals if not s.one_line]
    expected_refused = [o for o in outcomes if o.expect == "refuse" and o.forward.status == "refused"]
    share = len(exact) / len(convertible) if convertible else 1.0
    met = share >= GOAL and not wrong and not long_refusals and not errors
    lines = [
        f"- convertible models converted exactly, both ways: {len(exact)} of {len(convertible)} ({share:.0%}; goal "
        f"{GOAL:.0%}); in the author's direction: {len(one_way)} of {len(convertible)}",
        f"- the command line on the .pt2 of the convertible torch models: {len(cli_exact)} of {len(cli)} converted "
        "exactly",
        f"- accepted wrong by the API or the command line (differs from the author's model on the held-out "
        f"batch): {len(wrong)}"
        + (f" ({', '.join(wrong)})" if wrong else "") + " (goal: none)",
        f"- refusals: {len(refusals)}, of which more than one line: {len(long_refusals)} (goal: none); "
        f"models a correct converter must refuse, refused: {len(expected_refused)} of "
        f"{len([o for o in outcomes if o.expect == 'refuse'])}; beyond the issue's list (either is right): "
        f"{', '.join(f'{o.name} {o.forward.status}' for o in outcomes if o.expect == 'either') or 'none'}",
        f"- tracebacks instead of a one-line refusal: {len(errors)}" + (f" ({', '.join(errors)})" if errors else ""),
    ]
    return lines, met


def short(step: dict | None) -> str:
    """One step of a --json file in a few characters: ✓ with |Δ|, "refused", "ACCEPTED WRONG", "error"."""
    if step is None or step["status"] == "not run":
        return "–"
    if step["status"] == "converted":
        diff = float(step["diff"])
        return f"✓ {diff:.0e}" if diff else "✓ 0"
    return {"refused": "refused", "accepted wrong": "**ACCEPTED WRONG**"}.get(step["status"], "**error**")


def combined(files: list[str]) -> list[str]:
    """The --json files of several backends side by side: per model, each backend's three steps."""
    runs = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            runs[os.path.basename(path).rsplit(".", 1)[0]] = {o["name"]: o for o in json.load(f)}
    backends = list(runs)
    first = runs[backends[0]]
    lines = ["| model | direction | expected | " + " | ".join(f"{b}: author's way / round trip / CLI .pt2"
                                                           for b in backends) + " |",
             "|---|---|---|" + "---|" * len(backends)]
    for name, o in first.items():
        cells = [" / ".join(short(runs[b].get(name, {}).get(k)) for k in ("forward", "back", "cli")) for b in backends]
        lines.append(f"| {name} | {o['direction']} | {o['expect']} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convert_zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated zoo names (default: the whole zoo)")
    parser.add_argument("--no-round-trip", action="store_true", help="convert in the author's direction only")
    parser.add_argument("--no-cli", action="store_true", help="skip the command line on the torch models' .pt2 files")
    parser.add_argument("--json", help="also write the outcomes to this JSON file")
    parser.add_argument("--combine", nargs="+", metavar="JSON",
                        help="print the --json files of several runs (one per backend, named BACKEND.json) side "
                             "by side, and run nothing")
    args = parser.parse_args(argv)
    if args.combine:
        print("\n".join(combined(args.combine)))
        return 0
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from tests.zoo import ZOO
    import tempfile
    from tests.zoo.harness import run, run_pt2
    chosen = args.only.split(",") if args.only else ZOO
    started = datetime.datetime.now(datetime.timezone.utc)
    outcomes = []
    with tempfile.TemporaryDirectory() as folder:
        for name in chosen:
            outcome = run(name, round_trip=not args.no_round_trip)
            if outcome.framework == "torch" and not args.no_cli:
                outcome.cli = run_pt2(name, folder)
            outcomes.append(outcome)
            print(f"  {name}: {outcome.forward.status}, round trip {outcome.back.status}"
                  + (f", CLI {outcome.cli.status}" if outcome.cli else ""), file=sys.stderr, flush=True)
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
                        "forward": vars(o.forward), "back": vars(o.back), "cli": o.cli and vars(o.cli)}
                       for o in outcomes], f, indent=1, default=str)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
