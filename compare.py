"""Compare label-smoothing runs: accuracy, NLL and calibration side by side.

    python compare.py runs/*.json --plot compare.png

Prints a Markdown table of the runs and of mean ± std per (method, smoothing, epochs), saves both
as `<plot stem>.md`, and draws validation-accuracy curves and reliability diagrams.
"""
import argparse
import os
import sys

from pyimagesearch import comparison
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
    rows = [comparison.run_row(run) for run in runs]
    text = ("## Runs\n\n" + comparison.markdown_table(rows, comparison.RUN_COLUMNS)
            + "\n\n## Mean ± std over seeds\n\n"
            + comparison.markdown_table(comparison.aggregate(rows), comparison.SUMMARY_COLUMNS)
            + "\n")
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    write_text(os.path.splitext(args.plot)[0] + ".md", text)
    comparison.plot_comparison(args.plot, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
