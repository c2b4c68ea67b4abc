"""Draw ``docs/images/benchmarks.png`` from the benchmark figures.

The numbers are those of the benchmark run reported on the Benchmarks page
(2026-11-26, full data, 2 cores, compile excluded; the time to 0.98 from the
run of 2026-12-07, with the defaults of issue 23). After a
new run, update them here and regenerate the image::

    python docs/make_benchmark_plot.py

The image is committed, so the docs build does not depend on this script.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a script that only writes a file

import matplotlib.pyplot as plt  # noqa: E402

OUT = Path(__file__).resolve().parent / "images" / "benchmarks.png"

# (panel title, [(bar label, seconds, annotation)], x-axis label)
PANELS = [
    ("One epoch of a 784-256-10 MLP, full MNIST\n(bench_engine.py)", [
        ("skdigits", 0.156, "0.156 s"),
        ("BLAS floor (2 products)", 0.271, "0.271 s"),
        ("PyTorch 2.13", 0.961, "0.961 s"),
        ("scikit-learn", 1.025, "1.025 s"),
    ], "seconds per epoch"),
    ("Time to 0.98 test accuracy, full MNIST\n"
     "(bench_recipe.py 2026-12-07, median of 5 seeds)", [
        ("skdigits MLPClassifier(), to 0.98", 1.31, "1.31 s"),
        ("skdigits, the whole fit", 2.24, "2.24 s, 0.9850"),
        ("PyTorch 2.13, Adam 1e-3", 6.62, "6.62 s"),
    ], "seconds"),
    ("Logistic regression fit, full data\n(bench_softmax.py)", [
        ("skdigits, MNIST", 0.102, "0.10 s, 0.9277"),
        ("scikit-learn, MNIST", 12.82, "12.8 s, 0.9256"),
        ("skdigits, Fashion", 0.255, "0.26 s, 0.8462"),
        ("scikit-learn, Fashion", 12.54, "12.5 s, 0.8445"),
    ], "seconds"),
    ("MLP on sparse text-like input, 3 epochs\n(bench_sparse.py)", [
        ("skdigits", 3.56, "3.56 s, 0.9920"),
        ("scikit-learn", 42.57, "42.6 s, 0.9926"),
    ], "seconds"),
]


def bar_colour(label):
    if label.startswith("skdigits"):
        return "#1f6f8b"
    if label.startswith("BLAS"):
        return "#9aa5ad"
    return "#d98e32"


def main(out=OUT):
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.2), layout="constrained")
    for ax, (title, bars, xlabel) in zip(axes.flat, PANELS):
        labels = [b[0] for b in bars][::-1]
        seconds = [b[1] for b in bars][::-1]
        notes = [b[2] for b in bars][::-1]
        ax.barh(labels, seconds, color=[bar_colour(lb) for lb in labels],
                height=0.6)
        ax.set_xlim(0, max(seconds) * 1.3)
        for y, (s, note) in enumerate(zip(seconds, notes)):
            ax.annotate(note, (s, y), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(labelsize=9)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("skdigits against scikit-learn and PyTorch: shorter is faster "
                 "(annotations: time, test accuracy)", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
