"""Compare label-smoothing runs: accuracy, NLL and calibration side by side.

    python compare.py runs/*.json --plot compare.png

Prints Markdown tables of the runs and of mean ± std per (regime, method, smoothing, epochs), on
one view and with test-time augmentation; saves them as `<plot stem>.md`; draws validation-accuracy
curves and reliability diagrams, coloured by smoothing factor, one line style per seed.
"""
import argparse
import os
import sys

from pyimagesearch import comparison, figures
from pyimagesearch.outputs import write_text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="<plot stem>.json files written by the scripts")
    parser.add_argument("--plot", default="compare.png", help="figure; the table goes beside it")
    args = parser.parse_args(argv)
    try:
        runs = [comparison.load_run(path) for path in args.runs]
    except comparison.NotARunError as error:
        print(f"compare.py: error: {error}", file=sys.stderr)
        return 2
    text = comparison.report(runs)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    write_text(os.path.splitext(args.plot)[0] + ".md", text)
    figures.plot_comparison(args.plot, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
