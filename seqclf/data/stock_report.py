"""The honest report of a stock model: baselines and a long/flat strategy on the same test windows.

``majority`` always says the training split's most common class; ``persistence`` says the
direction of the last ``horizon`` steps (the past return, labelled by the same rule). The
strategy holds the instrument for one step after each window the model (or baseline) calls
``up`` and stays out otherwise; its return, and buy-and-hold's over the same steps, are
compounded per instrument and averaged over instruments.
"""

import numpy as np
import pandas as pd

from ..evaluation import classification_metrics


def baselines(adapter, frame, probabilities):
    """``baselines`` (majority, persistence), ``strategy`` returns and ``in_sample_windows`` for ``frame``."""
    classes = np.asarray(adapter.classes_, dtype=object)
    truth = frame[adapter.label_col].to_numpy(dtype=object)
    majority = max(adapter.class_counts_, key=adapter.class_counts_.get)
    past = adapter.direction(frame["past_return"].to_numpy())
    calls = {
        "model": classes[probabilities.argmax(axis=1)],
        "majority": np.full(len(frame), majority, dtype=object),
        "persistence": np.where(pd.isna(past), majority, past).astype(object),
    }
    index = {name: i for i, name in enumerate(adapter.classes_)}
    scores = {}
    for name, called in calls.items():
        metrics = classification_metrics([index[c] for c in truth], [index[c] for c in called], adapter.classes_)
        scores[name] = {"accuracy": round(metrics["accuracy"], 6), "macro_f1": round(metrics["macro_f1"], 6),
                        "strategy_return": strategy_return(frame, called == "up")}
    model = scores.pop("model")
    train_period = getattr(adapter, "periods_", {}).get("train")
    return {
        "in_sample_windows": int(frame["date"].between(*train_period).sum()) if train_period else 0,
        "baselines": scores,
        "strategy": {"model_return": model["strategy_return"],
                     "buy_and_hold_return": strategy_return(frame, np.ones(len(frame), bool)),
                     "period": [frame["date"].min(), frame["date"].max()] if len(frame) else None},
    }


def strategy_return(frame, long):
    """Compounded return of holding for one step after each ``long`` window; mean over instruments."""
    held = pd.Series(np.where(long, frame["next_return"].fillna(0.0).to_numpy(), 0.0), index=frame.index)
    per_instrument = held.groupby(frame["id"]).sum()
    return round(float(np.expm1(per_instrument).mean()), 6) if len(per_instrument) else 0.0


def strategy_curves(adapter, frame, probabilities):
    """Growth of 1 by date for buy-and-hold, the model's and persistence's long/flat strategies (mean over
    instruments)."""
    up = np.asarray(adapter.classes_, dtype=object)[probabilities.argmax(axis=1)] == "up"
    past_up = adapter.direction(frame["past_return"].to_numpy()) == "up"
    step = frame["next_return"].fillna(0.0).to_numpy()
    table = pd.DataFrame({"id": frame["id"].to_numpy(), "date": frame["date"].to_numpy(),
                          "buy and hold": step, "model": np.where(up, step, 0.0),
                          "persistence": np.where(past_up, step, 0.0)}).sort_values("date", kind="stable")
    columns = ["buy and hold", "model", "persistence"]
    table[columns] = np.exp(table.groupby("id")[columns].cumsum())
    return table.groupby("date")[columns].mean()


def lines(metrics):
    """Baselines and strategy returns beside the model's, for ``seqclf evaluate`` and ``seqclf info``."""
    if "baselines" not in metrics:
        return []
    strategy = metrics["strategy"]
    accuracy = metrics["accuracy"] if "accuracy" in metrics else metrics["test"]["accuracy"]
    rows = [f"baselines on the same windows (long/flat return; buy and hold {strategy['buy_and_hold_return']:+.2%}):",
            f"  {'model':<12} accuracy {accuracy:.4f}  return {strategy['model_return']:+.2%}"]
    rows += [f"  {name:<12} accuracy {scores['accuracy']:.4f}  return {scores['strategy_return']:+.2%}"
             for name, scores in metrics["baselines"].items()]
    if "walk_forward" in metrics:
        mean, folds = metrics["walk_forward"]["mean"], metrics["walk_forward"]["folds"]
        rows.append(f"walk-forward: {len(folds)} folds, mean accuracy {mean['test']['accuracy']:.4f} ("
                    + ", ".join(f"{name} {scores['accuracy']:.4f}" for name, scores in mean["baselines"].items()) + ")")
    return rows
