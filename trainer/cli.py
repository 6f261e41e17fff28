"""`python -m trainer generate | train | evaluate`.

TensorFlow is imported only after the data has been read and checked, so a bad file fails
in well under a second with one line on stderr and exit code 2 (no version is published).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from recommender.schema import Catalog
from trainer.data import DataError, load_purchases
from trainer.generate import DEFAULT_ROWS, DEFAULT_SEED, generate, write_dataset

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write development purchase data (deterministic for a seed)")
    gen.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED)
    gen.add_argument("--out", required=True, help="output file; Parquet when it ends in .parquet, else CSV")

    train = sub.add_parser("train", help="train on a purchases file and publish the next model version")
    train.add_argument("--data", required=True, help="purchases CSV or Parquet")
    train.add_argument("--models-dir", required=True, help="model repository (versions in <dir>/recommender/N)")
    train.add_argument("--epochs", type=int, default=100, help="maximum epochs (early stopping may end sooner)")
    train.add_argument("--batch-size", type=int, default=5000)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--arch", choices=("seed", "onehot"), default="onehot",
                       help="onehot (default): code slots one-hot encoded inside the model; "
                            "seed: the original network on 6 scaled inputs")
    train.add_argument("--learning-rate", type=float, default=0.03)
    train.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    train.add_argument("--catalog", help="JSON list of products (Catalog.to_json format) when the data "
                                         "holds other products than the default catalog")
    train.add_argument("--quiet", action="store_true", help="no progress output (default: one progress bar in a terminal, "
                            "one line per epoch otherwise)")
    train.add_argument("--generate-if-missing", action="store_true",
                       help=f"generate the default {DEFAULT_ROWS:,}-row data at --data if it does not exist")

    ev = sub.add_parser("evaluate", help="score a published version on a purchases file")
    ev.add_argument("--models-dir", required=True)
    ev.add_argument("--version", type=int, help="version number (default: the latest)")
    ev.add_argument("--data", required=True)
    return parser


def _generate(args) -> int:
    if args.rows < 1:
        print(f"error: --rows must be positive, got {args.rows}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = write_dataset(generate(args.rows, args.seed), args.out, args.seed)
    print(f"wrote {args.rows} rows to {out} (seed {args.seed})")
    return 0


def _load_catalog(path: str | None) -> Catalog | None:
    if not path:
        return None
    try:
        return Catalog.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read catalog: {exc}") from exc


def _train(args) -> int:
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--patience", args.patience)):
        if value < 1:
            print(f"error: {flag} must be at least 1, got {value}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if not args.learning_rate > 0:
        print(f"error: --learning-rate must be positive, got {args.learning_rate}", file=sys.stderr)
        return EXIT_BAD_INPUT
    data = Path(args.data)
    if args.generate_if_missing and not data.exists():
        write_dataset(generate(DEFAULT_ROWS, DEFAULT_SEED), data, DEFAULT_SEED)
        print(f"generated {DEFAULT_ROWS} rows at {data} (seed {DEFAULT_SEED})")
    dataset = load_purchases(data, catalog=_load_catalog(args.catalog))

    from trainer.training import TrainingConfig, train_and_publish  # imports TensorFlow

    config = TrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, arch=args.arch,
        learning_rate=args.learning_rate, patience=args.patience, progress=not args.quiet,
    )
    result = train_and_publish(dataset, args.models_dir, config)
    m, val = result.metrics, result.metrics["validation"]
    bayes = val["bayes_optimal_accuracy"]
    comparison = (f", Bayes-optimal {bayes:.4f}, ratio {val['model_to_bayes_ratio']:.4f}"
                  if bayes is not None else ", Bayes-optimal unknown (not generated data)")
    print(f"published version {result.version} at {result.folder}")
    print(f"validation accuracy {val['accuracy']:.4f}{comparison}, top-3 {val['top3_accuracy']:.4f}; "
          f"stopped at epoch {m['stopped_epoch']} (best {m['best_epoch']}) after {m['training_seconds']:.1f} s")
    return 0


def _evaluate(args) -> int:
    from trainer.evaluate import evaluate  # imports TensorFlow

    result = evaluate(args.models_dir, args.version, args.data)
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # TensorFlow's C++ start-up chatter is noise for a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    handlers = {"generate": _generate, "train": _train, "evaluate": _evaluate}
    try:
        return handlers[args.command](args)
    except (DataError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
