"""What a finished run writes, results first: the JSON as soon as the metrics exist, then the
report, the figures, the trained model. Each output is written on its own, so one that cannot be
written (a full disk, a folder in the way) is named in one line and the others are still
written; then `OutputsMissing` says the run is incomplete. The run's backup is removed only
once every output is written: until then a rerun of the same command restores the trained
model from it and writes them, without training again."""
import sys

from pyimagesearch import backup, figures, outputs
from pyimagesearch.errors import OutputsMissing


def write_run_outputs(paths, result, report_text, model, phases, script):
    """Every output of a finished run (`result` as the JSON holds it); OutputsMissing after the
    others are written if some could not be."""
    with phases("writing"):
        for path in (paths["json"], paths["report"], paths["plot"], paths["calibration"],
                     paths["model"], paths["history_csv"]):
            outputs.remove_temporaries(path)  # of an earlier attempt, killed while writing
        written_json = _attempt(paths["json"], lambda: outputs.write_json(paths["json"], result),
                                script)
        missing = [] if written_json else [paths["json"]]
        for path, write in ((paths["report"], lambda: outputs.write_text(paths["report"],
                                                                          report_text)),
                            (paths["plot"], lambda: figures.plot_history(paths["plot"], result)),
                            (paths["calibration"],
                             lambda: figures.plot_calibration(paths["calibration"], result)),
                            (paths["model"], lambda: outputs.save_model(paths["model"], model))):
            if not _attempt(path, write, script):
                missing.append(path)
    result.update(phases=phases.as_json(), wall_seconds=phases.total(), outputs_missing=missing)
    if written_json:  # again, now with the time the writing took
        _attempt(paths["json"], lambda: outputs.write_json(paths["json"], result), script)
    if missing:
        raise OutputsMissing(f"{len(missing)} output(s) could not be written: "
                             f"{', '.join(missing)}; {paths['backup']} is kept: run the same "
                             "command again to write them without training again")
    backup.remove(paths["backup"])


def write_diverged_outputs(paths, result):
    """A diverged run's partial results: its JSON (history up to the divergence) and plot. Its
    backup goes too (it holds the epoch that diverged): the same command then starts afresh."""
    outputs.write_json(paths["json"], result)
    figures.plot_history(paths["plot"], result)
    backup.remove(paths["backup"])


def _attempt(path, write, script):
    """True if `write()` wrote `path`; else one line on stderr naming it and the cause."""
    try:
        write()
        return True
    except OSError as error:
        print(f"{script}: error: cannot write {path}: {error.strerror or error}",
              file=sys.stderr, flush=True)
        return False
