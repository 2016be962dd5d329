"""``report.html``: a run directory on one page that a browser opens offline.

The settings, the data, the metrics, every plot of the run, the per-class scores and the test
examples the model got most confidently wrong (text as text, series as small line plots, tokens
with their tags, a translation's source, references and output). Everything is inside the one
file (plots as data URIs, series as inline SVG, no script), so it can be mailed or archived.
The examples are chosen by the task (:meth:`seqclf.tasks.Task.confidently_wrong`) when the run
is written and kept in ``report_examples.json``, so ``seqclf report RUN`` rebuilds the page from
the run directory alone.
"""

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .rundir import CONFIG, METRICS, check_run_dir, write_atomically, write_json
from .tasks import of_run

REPORT = "report.html"
EXAMPLES = "report_examples.json"
SHOWN = 12  # the most confidently wrong test examples on the page
MAX_POINTS = 300  # a series is drawn with at most this many steps (averaged down)
CAPTIONS = {"learning_curves.png": "Learning curves (the kept epoch marked)",
            "confusion_matrix.png": "Test confusion matrix", "step_labels.png": "The first test series, per step",
            "strategy.png": "The model's calls as a trading strategy", "test_alignment.png": "Attention alignment"}
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f6f6}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{display:inline-block;margin:.5em 1em .5em 0}
figure img{max-width:100%;max-height:560px;height:auto;border:1px solid #eee}.example{border:1px solid #ddd;border-radius:4px;padding:.5em .8em;
margin:.6em 0}.wrong{background:#fdd;border-radius:3px}.tag{color:#666;font-size:.85em}.muted{color:#777}"""


def shown_input(raw):
    """One raw input as the page shows it: ``{"text": ...}``, ``{"series": [[...], ...]}`` (steps x channels, padding
    dropped, averaged down to :data:`MAX_POINTS` steps) or ``{"tokens": [...]}``."""
    if isinstance(raw, dict):  # a tagger with token features: its tokens are the first input
        raw = next(iter(raw.values()))
    if isinstance(raw, str):
        return {"text": raw}
    values = np.asarray(raw)
    if values.dtype.kind in "OUS":
        return {"tokens": [str(token) for token in values.ravel() if token != ""]}
    values = values.reshape(len(values), -1).astype("float64")
    real = ~np.isnan(values).all(axis=1)
    values = values[: int(np.flatnonzero(real)[-1]) + 1] if real.any() else values[:0]
    factor = max(1, math.ceil(len(values) / MAX_POINTS))
    if factor > 1:
        cut = len(values) // factor * factor
        values = np.nanmean(values[:cut].reshape(-1, factor, values.shape[1]), axis=1)
    return {"series": np.round(values, 5).tolist(), "every": factor}


def write_examples(directory, task, adapter, frame, predictions):
    """Keep the test examples ``task`` finds most confidently wrong in ``directory`` for the report."""
    write_json(Path(directory) / EXAMPLES, task.confidently_wrong(adapter, frame, predictions, SHOWN))


def write_report(run_dir):
    """Write ``run_dir/report.html`` from the run directory's files (atomically); return its path."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    path = run_dir / REPORT
    write_atomically(path, render(run_dir))
    return path


def render(run_dir, shown_as=None):
    """The report page of ``run_dir`` as one HTML document (naming the run ``shown_as``, by default its path)."""
    run_dir = Path(run_dir)
    config = _read(run_dir / CONFIG)
    metrics = _read(run_dir / METRICS) if (run_dir / METRICS).exists() else None
    examples = _read(run_dir / EXAMPLES) if (run_dir / EXAMPLES).exists() else None
    settings = {k: v for k, v in config["settings"].items() if v is not None}
    title = f"{of_run(config).name} on {config['kind']} data: {settings.get('arch', '')}"
    parts = [f"<h1>{_e(title)}</h1>", f"<p class=muted>{_e(shown_as or run_dir.resolve())} &middot; seqclf "
             f"{_e(config.get('seqclf_version', '?'))}</p>"]
    if metrics:
        parts += ["<h2>Results</h2>", _metrics_table(metrics), _training_table(metrics)]
    parts += [_figures(run_dir)]
    if metrics and metrics.get("test", {}).get("per_class"):
        parts += ["<h2>Per class (test)</h2>", _per_class(metrics["test"]["per_class"])]
    if examples is not None:
        parts += [f"<h2>Most confidently wrong (test, {len(examples)} shown)</h2>",
                  "".join(_example(example, config) for example in examples) or "<p>No test example was wrong.</p>"]
    parts += ["<h2>Settings</h2>", _table(settings), "<h2>Model</h2>", _table(config.get("model", {})),
              "<h2>Data</h2>", _table({**config.get("data", {}), **config.get("data_summary", {})})]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<meta name=viewport content='width=device-width'><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None


def _e(value):
    return html.escape(str(value))


def _cell(value):
    if isinstance(value, float):
        return f"<td class=n>{value:.4f}</td>"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"<td class=n>{value:,}</td>"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return f"<td>{_e(value)}</td>"


def _table(rows):
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>" for k, v in rows.items()) + "</table>"


def _scalars(metrics, prefix=""):
    """The numbers of one split's metrics, nested ones with dotted names (per-class scores and matrices left out)."""
    found = {}
    for key, value in metrics.items():
        if key in ("per_class", "confusion_matrix"):
            continue
        if isinstance(value, dict):
            found |= _scalars(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix + key] = value
    return found


def _metrics_table(metrics):
    splits = [split for split in ("val", "test") if isinstance(metrics.get(split), dict)]
    columns = {split: _scalars(metrics[split]) for split in splits}
    names = list(dict.fromkeys(name for split in splits for name in columns[split]))
    head = "<tr><th>metric</th>" + "".join(f"<th>{'validation' if s == 'val' else s}</th>" for s in splits) + "</tr>"
    rows = "".join(f"<tr><th>{_e(name)}</th>" + "".join(_cell(columns[s][name]) if name in columns[s] else "<td></td>"
                                                        for s in splits) + "</tr>" for name in names)
    return f"<table id=metrics>{head}{rows}</table>"


def _training_table(metrics):
    keys = ("train_seconds", "epochs_run", "best_epoch", "stopped_by")
    return _table({**{k: metrics[k] for k in keys if k in metrics}, **metrics.get("budget", {})})


def _figures(run_dir):
    order = list(CAPTIONS)  # the known plots first, in this order, then any other by name
    pngs = sorted(run_dir.glob("*.png"), key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    figures = [f"<figure><img alt='{_e(p.stem)}' src='data:image/png;base64,"
               f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{_e(CAPTIONS.get(p.name, p.stem))}"
               f"</figcaption></figure>" for p in pngs]
    return ("<h2>Plots</h2>" + "".join(figures)) if figures else ""


def _per_class(per_class):
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>f1</th><th>support</th></tr>"
    return "<table id=per-class>" + head + "".join(
        f"<tr><th>{_e(name)}</th>" + "".join(_cell(scores.get(k)) for k in ("precision", "recall", "f1", "support"))
        + "</tr>" for name, scores in per_class.items()) + "</table>"


def _example(example, config):
    shown = example.get("input", {})
    head = f"<b>{_e(example['id'])}</b> &middot; "
    if "steps" in example:  # a label per step
        head += (f"{example['wrong_steps']} of {len(example['steps']['true'])} steps wrong, the surest of them at "
                 f"{example['confidence']:.1%}")
    elif "output" in example:  # a translation
        head += f"a wrong output with score {example['score']:.3f} (per symbol)"
    else:
        head += (f"true <b>{_e(example['true'])}</b> &middot; predicted <b class=wrong>{_e(example['predicted'])}</b> "
                 f"({example['confidence']:.1%})")
    if "text" in shown:
        body = f"<blockquote>{_e(shown['text'])}</blockquote>"
    elif "series" in shown:
        body = _sparkline(shown["series"], config.get("adapter", {}).get("channels"), shown.get("every", 1))
    elif "tokens" in shown:
        body = _tokens(shown["tokens"], example.get("steps"))
    else:
        body = ""
    if example.get("steps") and "tokens" not in shown:
        body += _step_runs(example["steps"])
    for key in ("references", "output"):
        if key in example:
            body += f"<div><span class=muted>{key}</span> {_e(example[key])}</div>"
    return f"<div class=example>{head}{body}</div>"


def _sparkline(series, channels, every, width=640, height=110):
    values = np.asarray(series, "float64")
    if values.size == 0:
        return "<p class=muted>(no values)</p>"
    lines = []
    for c in range(values.shape[1]):
        column = values[:, c]
        low, high = np.nanmin(column), np.nanmax(column)
        scale = (high - low) or 1.0
        x = np.linspace(2, width - 2, len(column)) if len(column) > 1 else np.array([width / 2])
        y = height - 2 - (column - low) / scale * (height - 4)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y) if not math.isnan(b))
        name = channels[c] if isinstance(channels, list) and c < len(channels) else f"channel {c + 1}"
        lines.append(f"<polyline fill=none stroke='{COLOURS[c % len(COLOURS)]}' stroke-width=1.2 points='{points}'>"
                     f"<title>{_e(name)}</title></polyline>")
    note = f"{len(values) * every} steps" + (f", averaged {every} to a point" if every > 1 else "")
    return (f"<div><svg width={width} height={height} viewBox='0 0 {width} {height}' role=img><title>{_e(note)}"
            f"</title>" + "".join(lines) + f"</svg></div><div class=muted>{_e(note)}; each channel scaled to its own "
            f"range</div>")


def _tokens(tokens, steps):
    if not steps:
        return "<p>" + " ".join(_e(token) for token in tokens) + "</p>"
    words = []
    for token, true, predicted in zip(tokens, steps["true"], steps["predicted"]):
        tag = _e(true) if true == predicted else f"{_e(true)}&rarr;{_e(predicted)}"
        words.append(f"<span class='{'wrong' if true != predicted else ''}'>{_e(token)}<span class=tag>/{tag}</span>"
                     f"</span>")
    return "<p>" + " ".join(words) + "</p>"


def _step_runs(steps, most=8):
    """The wrong steps of a series as runs of the same mistake: ``12-48 Walking -> Running``."""
    true, predicted = steps["true"], steps["predicted"]
    runs, start = [], None
    for t in range(len(true) + 1):
        wrong = t < len(true) and true[t] != predicted[t]
        same = start is not None and wrong and (true[t], predicted[t]) == (true[start], predicted[start])
        if start is not None and not same:
            span = f"{start}-{t - 1}" if t - 1 > start else f"{start}"
            runs.append(f"{span} {_e(true[start])} &rarr; {_e(predicted[start])}")
            start = None
        if wrong and start is None:
            start = t
    shown = ", ".join(runs[:most])
    more = f" and {len(runs) - most} more" if len(runs) > most else ""
    return f"<div><span class=muted>wrong steps (from the first one shown)</span> {shown}{more}</div>"
