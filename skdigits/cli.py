"""The ``skdigits`` command line (the one module that writes to stdout).

Exit codes: 0 success, 1 a runtime problem (data not found, training failed,
unreadable file), 2 bad arguments (argparse's convention).
"""

import argparse
import sys
import time

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """An error reported as one line on stderr."""


def _load(dataset, subset, args):
    from .datasets import load_mnist

    return load_mnist(dataset, subset, data_home=args.data_home, sample=args.sample,
                      download_if_missing=args.download)


def _cmd_fit(args):
    from . import SoftmaxRegression

    train = _load(args.dataset, "train", args)
    test = _load(args.dataset, "test", args)
    X = train.data.astype(np.float32) / 255.0
    Xt = test.data.astype(np.float32) / 255.0
    names = np.asarray(train.target_names)
    where = "bundled sample" if args.sample else train.get("source", "files")
    print(f"{args.dataset}: {len(X)} train / {len(Xt)} test images ({where})")
    params = dict(multi_class=args.multi_class, random_state=args.seed,
                  verbose=2 if args.progress else 0)
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    model = SoftmaxRegression(**params)
    tic = time.perf_counter()
    model.fit(X, train.target)
    seconds = time.perf_counter() - tic
    acc = model.score(Xt, test.target)
    print(f"SoftmaxRegression(multi_class={args.multi_class!r}): "
          f"{model.n_iter_} epochs in {seconds:.2f} s, "
          f"train accuracy {model.accuracy_curve_[-1]:.4f}, test accuracy {acc:.4f}")
    last = model.loss_curve_per_class_[-1]
    order = np.argsort(last)
    print("loss per class, last epoch (easiest first): " + ", ".join(
        f"{names[k]} {last[k]:.3f}" for k in order))
    if args.output:
        import joblib

        joblib.dump(model, args.output)
        print(f"model saved to {args.output}")
    return EXIT_OK


def build_parser():
    """The argument parser of the ``skdigits`` command."""
    parser = argparse.ArgumentParser(
        prog="skdigits",
        description="Train and inspect skdigits classifiers on MNIST and "
                    "Fashion-MNIST.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    fit = sub.add_parser(
        "fit", help="train SoftmaxRegression and report accuracy and per-class loss",
        description="Train SoftmaxRegression on the train split, score it on the "
                    "test split, print the per-class loss of the last epoch, and "
                    "optionally save the model with joblib.")
    fit.add_argument("--dataset", choices=["digits", "fashion"], default="digits")
    fit.add_argument("--sample", action="store_true",
                     help="use the sample bundled with the package (no files needed)")
    fit.add_argument("--data-home", metavar="DIR", default=None,
                     help="folder holding mnist/ and fashion-mnist/ (default: "
                          "$SKDIGITS_DATA, then the per-user data folder)")
    fit.add_argument("--download", action="store_true",
                     help="download the files from OpenML when they are not found")
    fit.add_argument("--multi-class", choices=["multinomial", "ovr"],
                     default="multinomial")
    fit.add_argument("--max-iter", type=_positive_int, default=None, metavar="N")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--progress", action="store_true", help="show a progress bar")
    fit.add_argument("-o", "--output", metavar="FILE", default=None,
                     help="save the fitted model here (joblib)")
    fit.set_defaults(func=_cmd_fit)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("skdigits: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, CLIError) as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        message = " ".join(lines) if lines else repr(exc)
        print(f"skdigits {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
