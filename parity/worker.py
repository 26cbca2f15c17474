"""One run for ``python -m parity compare``: one framework, one backend, one seed, one mode.

Runs in its own process (Keras reads ``KERAS_BACKEND`` once).  Every run, Keras
included, first builds the PyTorch model from the seed, so that the Keras run can
measure how far its starting point lies from PyTorch's (``faithful``) or start
exactly there (``lockstep`` and ``torch-init``).

Modes:
* ``faithful``: each framework keeps its own defaults (initialisers, torch's two
  biases, Adam's epsilon): what a user of each framework gets.
* ``torch-init``: Keras starts from PyTorch's initial weights, everything else as
  ``faithful``.  Separates the effect of initialisation from the rest.
* ``lockstep``: identical initial weights, torch's ``bias_hh`` folded into ``bias_ih``
  and frozen, and a Keras Adam that takes torch's steps: the same computation.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

MODES = ("faithful", "torch-init", "lockstep")
PROBE = 256  # test images used to compare logits at initialisation


def run(framework: str, backend: str, mode: str, config, out: Path) -> dict:
    from common.config import FRAMEWORKS, check_choice
    check_choice("framework", framework, FRAMEWORKS)
    check_choice("mode", mode, MODES)
    import torch
    from common.data import prepare_data
    from common.report import write_metrics
    from torch_version.model import build_model as build_torch
    from torch_version.train import set_cpu_threads

    set_cpu_threads(torch.device("cpu"))  # as torch_version.run does: one thread unless OMP_NUM_THREADS says
    data = prepare_data(config)
    probe = data.x_test[:PROBE]
    torch.manual_seed(config.seed)
    torch_model = build_torch(**config.model_kwargs())
    if mode == "lockstep":
        from parity.lockstep import align_torch_for_lockstep
        align_torch_for_lockstep(torch_model)
    with torch.no_grad():
        torch_init = torch_model(torch.from_numpy(probe)).numpy()

    if framework == "torch":
        from torch_version.train import evaluate, train
        model = torch_model
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
        init_diff = 0.0
        history = train(model, data.train, config.epochs, torch.nn.CrossEntropyLoss(), optimizer,
                        (data.x_val, data.y_val))  # its epoch lines: parity.compare shows them as they come
        test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, batch_size=config.batch_size)
    else:
        import keras
        from common.speed import speed_of
        from keras_version.model import build_model, count_params
        from keras_version.train import compile_model, evaluate, train
        speed = speed_of(backend, config)  # the backend's speed settings, as keras_version.run uses them
        keras.utils.set_random_seed(config.seed)
        model = build_model(**config.model_kwargs(), unroll=speed.unroll)
        if mode in ("torch-init", "lockstep"):
            from parity import torch_to_keras
            torch_to_keras(torch_model, model)
        optimizer = None
        if mode == "lockstep":
            from parity.lockstep import keras_adam_like_torch
            optimizer = keras_adam_like_torch(config.learning_rate)
        compile_model(model, config.learning_rate, optimizer=optimizer, jit_compile=speed.jit_compile,
                      steps_per_execution=speed.steps_per_execution)
        params = count_params(model)
        init_diff = float(np.max(np.abs(np.asarray(model.predict(probe, verbose=0)) - torch_init)))
        history = train(model, data.train, config.epochs, (data.x_val, data.y_val))
        test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test, batch_size=config.batch_size)

    out.mkdir(parents=True, exist_ok=True)
    return write_metrics(out, framework=framework, backend=backend, config=config, params=params,
                         test_loss=test_loss, test_accuracy=test_accuracy, history=history,
                         mode=mode, seed=config.seed, init_max_abs_logit_diff=init_diff)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends, however it ends (SIGKILL included).

    Linux: the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a thread checks every half second.  Either way, a parent that died before
    this ran is noticed at once.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        import threading

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m parity.worker")
    parser.add_argument("spec", help="JSON: framework, backend, mode, out, parent (pid) and RunConfig fields")
    spec = json.loads(parser.parse_args(argv).spec)
    if spec.get("parent") is not None:
        die_with_parent(spec["parent"])
    if spec["framework"] == "keras":
        os.environ["KERAS_BACKEND"] = spec["backend"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from common.config import RunConfig
    config = RunConfig(**spec["config"])
    run(spec["framework"], spec["backend"], spec["mode"], config, Path(spec["out"]))


if __name__ == "__main__":
    from common.cli import run_cli
    sys.exit(run_cli(main, "python -m parity.worker"))
