"""The page at ``GET /`` (and ``/ui``): try the served models in a browser.

One self-contained HTML document (inline style and script, no build step, no request to any other
host: its Content-Security-Policy allows the server's own origin only). It lists the served models
and gives each a form fitting its inputs: a text box for texts, one sentence per line for token
lists (a box per input column), a pasted table or JSON for sensor series and stock windows. Answers
come from the REST predict route, as any client's would: the label, the class probabilities as
bars (and, for a model pooling by attention, the steps it read shaded by their weights), a tag per
token, or the output text and its score.
"""

import base64
import hashlib
import json

from tensorflow.core.framework import types_pb2

SCRIPT = r"""
const MODELS = JSON.parse(document.getElementById("models").textContent);

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function kindOf(input) {
  if (input.dtype === "DT_STRING") return input.shape.length === 1 ? "text" : "tokens";
  return "numbers";
}

const HINTS = {
  text: "One text per line.",
  tokens: "One sentence per line, tokens separated by spaces.",
  numbers: "A table: one row per step, values separated by commas or spaces; a blank line starts the next "
           + "instance. Or JSON: one instance [[...], ...] or a list of them.",
};

function parseNumbers(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    const value = JSON.parse(trimmed);
    return Array.isArray(value[0]) && Array.isArray(value[0][0]) ? value : [value];
  }
  return trimmed.split(/\n\s*\n/).map(block => block.split("\n")
    .map(line => line.trim().split(/[\s,;]+/).filter(cell => cell !== "").map(Number))
    .filter(row => row.every(Number.isFinite)));  // a header row of names is skipped
}

function instancesOf(model, boxes) {
  const values = {};
  for (const input of model.inputs) {
    const text = boxes[input.name].value;
    const kind = kindOf(input);
    if (kind === "numbers") values[input.name] = parseNumbers(text);
    else {
      const lines = text.split("\n").filter(line => line.trim());
      values[input.name] = kind === "text" ? lines : lines.map(line => line.trim().split(/\s+/));
    }
  }
  if (model.inputs.length === 1) return values[model.inputs[0].name];
  const count = values[model.inputs[0].name].length;
  return Array.from({length: count}, (_, i) =>
    Object.fromEntries(model.inputs.map(input => [input.name, values[input.name][i]])));
}

function bars(probabilities, classes) {
  const order = probabilities.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
  return el("div", {class: "bars"}, ...order.map(([p, k]) => el("div", {class: "bar"},
    el("span", {class: "name"}, classes ? classes[k] : "class " + k),
    el("span", {class: "track"}, el("span", {class: "fill", style: "width:" + (100 * p).toFixed(1) + "%"})),
    el("span", {class: "value"}, p.toFixed(3)))));
}

function steps(prediction, instance, model) {
  const tokens = model.inputs.length > 1 ? instance.tokens : instance;
  if (kindOf(model.inputs.find(i => i.name === "tokens") || model.inputs[0]) !== "numbers") {
    const shown = typeof tokens === "string" ? Array.from(tokens) : tokens;
    return el("div", {class: "tags"}, ...prediction.label.map((label, i) =>
      el("span", {class: "tag"}, el("span", {class: "token"}, shown[i]), el("span", {class: "label"}, label))));
  }
  const runs = [];
  prediction.label.forEach((label, i) => {
    const last = runs[runs.length - 1];
    if (last && last.label === label) last.end = i; else runs.push({label, start: i, end: i});
  });
  return el("ul", {class: "runs"}, ...runs.map(r => el("li", {},
    r.start === r.end ? `step ${r.start + 1}: ` : `steps ${r.start + 1}-${r.end + 1}: `,
    el("b", {class: "label"}, r.label))));
}

function shaded(prediction) {
  const peak = Math.max(...prediction.attention, 1e-9);
  return el("p", {class: "attention"}, el("small", {}, "attention: "), ...prediction.steps.flatMap((step, i) => [
    el("span", {class: "step", title: `attention ${prediction.attention[i].toFixed(3)}`,
                style: `background: rgba(255, 140, 0, ${(prediction.attention[i] / peak).toFixed(3)})`}, step), " "]));
}

function show(result, model, instances, answer) {
  result.replaceChildren();
  if (answer.error) { result.append(el("p", {class: "error"}, answer.error)); return; }
  answer.predictions.forEach((prediction, i) => {
    const item = el("div", {class: "answer"});
    if ("output" in prediction) {
      item.append(el("b", {class: "label"}, prediction.output), ` score ${prediction.score.toFixed(3)}`);
    } else if (Array.isArray(prediction.label)) {
      item.append(steps(prediction, instances[i], model));
    } else {
      item.append(el("b", {class: "label"}, prediction.label), bars(prediction.probabilities, model.classes));
      if ("attention" in prediction) item.append(shaded(prediction));
    }
    result.append(item);
  });
}

for (const model of MODELS) {
  const boxes = {};
  const form = el("form", {});
  for (const input of model.inputs) {
    const kind = kindOf(input);
    boxes[input.name] = el("textarea", {name: input.name, rows: kind === "numbers" ? 8 : 3,
                                        placeholder: model.examples[input.name] || ""});
    form.append(el("label", {}, input.name + " ", el("small", {}, HINTS[kind])), boxes[input.name]);
  }
  const result = el("div", {class: "result", "aria-live": "polite"});
  form.append(el("button", {type: "submit"}, "Predict"));
  form.addEventListener("submit", async event => {
    event.preventDefault();
    let instances;
    try { instances = instancesOf(model, boxes); }
    catch (problem) { show(result, model, [], {error: "cannot read the input: " + problem.message}); return; }
    result.replaceChildren(el("p", {}, "..."));
    let answer;
    try {
      const response = await fetch(`/v1/models/${encodeURIComponent(model.name)}:predict`,
        {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({instances})});
      answer = await response.json();
    } catch (problem) { answer = {error: "no answer from the server: " + problem.message}; }
    show(result, model, instances, answer);
  });
  const inputs = model.inputs.map(i => `${i.name} (${i.dtype}, [${i.shape.join(", ")}])`).join(", ");
  document.getElementById("models-list").append(el("section", {class: "model", "data-model": model.name},
    el("h2", {}, model.name), el("p", {class: "about"}, `version ${model.version} of ${model.versions.join(", ")}; `
      + `input ${inputs}` + (model.classes ? `; classes ${model.classes.join(", ")}` : "")),
    form, result));
}
"""

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 52em; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin: 0 0 .2em; }
.model { border: 1px solid #ccc; border-radius: 6px; padding: 1em; margin: 1em 0; }
.about { color: #555; font-size: .9em; margin: 0 0 .6em; }
label { display: block; margin: .4em 0 .2em; font-weight: 600; } label small { font-weight: 400; color: #666; }
textarea { width: 100%; box-sizing: border-box; font: 14px ui-monospace, monospace; }
button { margin-top: .5em; padding: .35em 1.2em; }
.answer { margin: .7em 0; } .label { color: #0b5394; }
.bars { margin-top: .3em; } .bar { display: flex; align-items: center; gap: .5em; }
.bar .name { width: 10em; text-align: right; overflow: hidden; text-overflow: ellipsis; }
.bar .track { flex: 1; background: #eee; height: .9em; border-radius: 3px; }
.bar .fill { display: block; background: #3d85c6; height: 100%; border-radius: 3px; }
.bar .value { width: 4em; font-variant-numeric: tabular-nums; }
.tags { display: flex; flex-wrap: wrap; gap: .4em; }
.tag { display: inline-flex; flex-direction: column; align-items: center; border: 1px solid #ddd; padding: .1em .4em; }
.tag .label { font-size: .8em; } .error { color: #b00; }
.attention .step { padding: 0 .15em; border-radius: 2px; }
"""

def page(models):
    """``(html bytes, Content-Security-Policy)`` of the page for ``models`` (``{name: {version: ServedModel}}``)."""
    described = [describe(versions) for _, versions in sorted(models.items())]
    data = json.dumps(described).replace("<", "\\u003c")  # no "</script>" or "<!--" inside the script element
    script = SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; connect-src 'self'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    html = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>seqclf serve</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>"
            f"<body><h1>seqclf serve: try a model</h1><p>Each model below answers through "
            f"<code>POST /v1/models/&lt;name&gt;:predict</code>, as TensorFlow Serving's REST API does.</p>"
            f"<div id=\"models-list\"></div>"
            f"<script type=\"application/json\" id=\"models\">{data}</script><script>{script}</script></body></html>")
    return html.encode(), policy


def describe(versions):
    """What the page needs of one model: its latest version's inputs, outputs, class names and example inputs."""
    latest = versions[max(versions)]
    inputs = [{"name": name, "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
               "shape": [-1 if d is None else d for d in spec.shape.as_list()]}
              for name, spec in sorted(latest.input_specs.items(), key=lambda item: item[0] != "tokens")]
    return {"name": latest.name, "version": latest.version, "versions": sorted(versions), "inputs": inputs,
            "outputs": sorted(latest.signature.structured_outputs), "classes": latest.class_names,
            "examples": {i["name"]: _example(i) for i in inputs}}


def _example(input):
    """A placeholder showing the form an input takes."""
    if input["dtype"] == "DT_STRING":
        return {"text": "a gripping, funny and moving film", "tokens": "The cat sat on the mat ."}.get(input["name"], "")
    channels = input["shape"][-1] if input["shape"][-1] > 0 else 3
    return "\n".join(", ".join(f"{0.1 * (row + column + 1):.1f}" for column in range(channels)) for row in range(3))
