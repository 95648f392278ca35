"""Training runs on computation graphs: predictive coding beside backprop, from the same weights.

The long runs of issue 3, kept out of the test suite: a CNN on MNIST and on
Fashion-MNIST, the Elman RNN on surnames (18 languages), and character-level LSTMs on
tiny-shakespeare (cell level by Z-IL, exact; gate level by FixedPred, exact, and by
IL, which is not). Each run is ``neurosim.training.train`` on a ``models/*.toml``
definition with the overrides below; the script prints a Markdown table, writes a
figure of the training loss per epoch of the rule and of backprop side by side, and
saves every run directory under ``benchmarks/results/train_graphs/``.

    NEUROSIM_DATA_DIR=../shared/data python benchmarks/train_graphs.py [--quick] [--only cnn_mnist ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository first on sys.path)

from neurosim.cli import _load_toml
from neurosim.recording import read_metrics
from neurosim.training import TrainConfig, train

RUNS = {
    # name: (model file, overrides, quick overrides)
    "cnn_mnist": ("cnn_mnist.toml", {"epochs": 1}, {"limit": 2000}),
    "cnn_fashion_mnist": ("cnn_fashion_mnist.toml", {"epochs": 1, "limit": 20000}, {"limit": 2000}),
    "rnn_names": ("rnn_names.toml", {"epochs": 5}, {"epochs": 2, "limit": 2000}),
    "lstm_cell_zil": ("lstm_shakespeare.toml", {"epochs": 5, "limit": 5000}, {"epochs": 2, "limit": 500}),
    "lstm_gate_fixedpred": ("lstm_shakespeare.toml", {"epochs": 5, "limit": 5000, "rule": "fixedpred",
                                                      "model.granularity": "gate"}, {"epochs": 2, "limit": 500}),
    "lstm_gate_il": ("lstm_shakespeare.toml", {"epochs": 5, "limit": 5000, "rule": "il", "gamma": 0.2, "t_c": 20,
                                               "model.granularity": "gate"}, {"epochs": 2, "limit": 500}),
}


def _config(name: str, quick: bool, out: Path) -> TrainConfig:
    file, overrides, quick_overrides = RUNS[name]
    values = _load_toml(str(common.REPO_ROOT / "models" / file))
    for key, value in {**overrides, **(quick_overrides if quick else {})}.items():
        if key.startswith("model."):
            values["model"][key.removeprefix("model.")] = value
        else:
            values[key] = value
    values["out"] = str(out / name)
    return TrainConfig.from_dict(values, source=name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small slices (a few minutes in all)")
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), help="run only these")
    parser.add_argument("--figure", default=None, help="where to write the figure (default: in the results folder)")
    parser.add_argument("--replot", metavar="DIR", help="only redraw the figure from the runs saved in DIR")
    args = parser.parse_args()
    if args.replot:
        histories = {}
        for run in sorted(Path(args.replot).iterdir()):
            if (run / "metrics.csv").exists():
                rule = json.loads((run / "config.json").read_text())["rule"]["rule"]
                histories[run.name] = (rule, read_metrics(run / "metrics.csv"))
        _figure(histories, Path(args.figure or Path(args.replot) / "loss_curves.png"))
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = common.RESULTS_DIR / "train_graphs" / stamp
    rows, histories = [], {}
    for name in args.only or list(RUNS):
        config = _config(name, args.quick, out)
        result = train(config, progress=False, log=lambda line: print(line, file=sys.stderr))
        final = result.history[-1]
        histories[name] = (config.rule, result.history)
        rows.append((name, config.rule, len(result.history), final["train_loss_pc"], final["train_loss_bp"],
                     final["test_acc_pc"], final["test_acc_bp"], final["max_weight_diff"], result.seconds))
    print("| run | rule | epochs | train loss PC | train loss BP | test acc PC | test acc BP | max abs dW | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.2%} | {r[6]:.2%} | {r[7]:.2e} | {r[8]:.0f} |")
    (out / "summary.json").write_text(json.dumps({"rows": rows, "quick": args.quick}, indent=2))
    _figure(histories, Path(args.figure) if args.figure else out / "loss_curves.png")


def _figure(histories: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = {k: v for k, v in histories.items() if len(v[1]) > 1}  # a curve needs two epochs
    if not histories:
        return
    fig, axes = plt.subplots(1, len(histories), figsize=(3.2 * len(histories), 3), squeeze=False)
    for ax, (name, (rule, history)) in zip(axes[0], histories.items()):
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss_bp"] for h in history], "o-", lw=3, alpha=0.4, label="backprop")
        ax.plot(epochs, [h["train_loss_pc"] for h in history], "x--", color="k", label=f"{rule} (event loop)")
        ax.set_title(name, fontsize=9)
        ax.ticklabel_format(useOffset=False, axis="y")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("training loss per sample")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"figure: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
