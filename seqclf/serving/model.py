"""One served version of one model: its SavedModel signature, the checks of its inputs, and its metadata."""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from .. import tasks
from ..errors import RunDirectoryError
from ..export import EXTRA, SIGNATURE
from ..rundir import LABELS, read_labels
from ..padding import nan_padded, padded

log = logging.getLogger("seqclf.serving")
MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# A version is a number in ASCII digits, as in TensorFlow Serving (int64: at most 19 digits). Not
# str.isdigit(): that also takes other scripts' digits ("١", "²"), which int() then reads as numbers.
VERSION = re.compile(r"[0-9]{1,19}")


class RequestError(Exception):
    """A request the server cannot answer; ``status`` is the HTTP status code, ``headers`` extra response headers."""

    def __init__(self, message, status=400, headers=()):
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


@dataclass
class ServedModel:
    """One version of one model: its loaded SavedModel and serving signature."""

    name: str
    version: int
    path: Path
    loaded: object = field(repr=False)
    signature: object = field(repr=False)
    task: object = None  # how an instance is answered: the task whose export has these outputs

    @classmethod
    def load(cls, name, version, path):
        loaded = tf.saved_model.load(str(path))
        if SIGNATURE not in loaded.signatures:
            raise RunDirectoryError(f"{path} has no {SIGNATURE!r} signature")
        signature = loaded.signatures[SIGNATURE]
        task = tasks.for_outputs(signature.structured_outputs)
        if task is None:
            raise RunDirectoryError(f"{path}: no registered task gives the outputs of its {SIGNATURE!r} signature "
                                    f"({', '.join(sorted(signature.structured_outputs))}); seqclf serves a label per "
                                    f"sequence or per step, and output texts")
        return cls(name, version, Path(path), loaded, signature, task)

    @property
    def class_names(self):
        """The class names in output order, as the export (or the run holding it) lists them; None if neither does."""
        folders = [self.path / EXTRA]
        if len(self.path.parents) > 2 and self.path.parents[1].name == "export":  # run/export/<name>/<version>
            folders.append(self.path.parents[2])
        return next((read_labels(folder) for folder in folders if (folder / LABELS).is_file()), None)

    @property
    def input_specs(self):
        """The signature's inputs by name: one, or a tagger's ``tokens`` and its token feature columns."""
        return self.signature.structured_input_signature[1]

    @property
    def several_inputs(self):
        """Whether an instance holds several inputs (an object of them): a tagger with token features."""
        return len(self.input_specs) > 1

    @property
    def input_name(self):
        """The input whose values say how many steps an instance has: the only one, or ``tokens``."""
        return "tokens" if self.several_inputs else next(iter(self.input_specs))

    @property
    def input_spec(self):
        return self.input_specs[self.input_name]

    def steps(self, instances):
        """What each instance's answer is as long as: the instance, or its ``tokens`` when it names several inputs."""
        return [instance[self.input_name] for instance in instances] if self.several_inputs else instances

    def check(self, values):
        """Check ``values`` (a list of instances) against the signature's input; return them as an array (a dict
        of arrays by input name for several inputs)."""
        spec = self.input_spec
        if self.several_inputs:
            return self._token_tables(values)
        if spec.dtype == tf.string and spec.shape.rank == 2:
            return self._token_lists(values)
        if spec.dtype == tf.string:
            if not all(isinstance(v, str) for v in values):
                raise RequestError(f"input {self.input_name!r} takes strings; got {_kinds(values)}")
            self._check_unicode(values, values)
            return np.array(values, dtype=object)
        try:
            array = np.asarray(values, dtype=spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError, OverflowError):
            array = self._pad(values)
        if not spec.shape.is_compatible_with(array.shape):
            raise RequestError(f"input {self.input_name!r} takes shape {shape_text(spec.shape)}; got {list(array.shape)}")
        return array

    def _check_unicode(self, instances, strings):
        """JSON may escape a lone surrogate ("\\ud800"): no text TensorFlow takes, and it would fail the batch."""
        try:
            "".join(strings).encode("utf-8")
        except UnicodeEncodeError:
            bad = next(i for i, v in enumerate(instances) if not _encodable("".join(v)))
            raise RequestError(f"instance {bad} of input {self.input_name!r} is not valid Unicode text "
                               "(it holds a lone surrogate)") from None

    def _token_lists(self, values, name=None):
        """Lists of tokens (a tagger's input) of any lengths, padded with "" to the longest (masked by the model)."""
        name = name or self.input_name
        if not all(isinstance(v, list) and v and all(isinstance(t, str) and t for t in v) for v in values):
            raise RequestError(f"input {name!r} takes lists of tokens: non-empty lists of non-empty strings")
        flat = [token for tokens in values for token in tokens]
        self._check_unicode(values, flat)
        return padded(np.array(flat, dtype=object), [len(tokens) for tokens in values], "", object)

    def _token_tables(self, values):
        """Instances of a tagger with token features: objects holding a list per input, as long as ``tokens``."""
        names = sorted(self.input_specs)
        for number, instance in enumerate(values):
            if not isinstance(instance, dict) or sorted(instance) != names:
                got = ", ".join(map(repr, instance)) if isinstance(instance, dict) else type(instance).__name__
                raise RequestError(f"instance {number} must be an object holding the inputs {', '.join(names)} (a "
                                   f"list of strings each, one per token); got {got}")
            lengths = {name: len(value) if isinstance(value, list) else None for name, value in instance.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{name}: {length}" for name, length in sorted(lengths.items()))
                raise RequestError(f"instance {number} has lists of different lengths ({shown}); each input gives "
                                   f"one string per token")
        return {name: self._token_lists([instance[name] for instance in values], name) for name in names}

    def _pad(self, values):
        """Sequences of different lengths, for an input with a free time axis: padded with NaN (masked by the model)."""
        spec = self.input_spec
        problem = RequestError(f"input {self.input_name!r} takes {spec.dtype.name} arrays of shape "
                               f"{shape_text(spec.shape)}; got values that are not one")
        if spec.shape.rank != 3 or spec.shape[1] is not None or not spec.dtype.is_floating:
            raise problem
        try:
            sequences = [np.asarray(value, dtype=spec.dtype.as_numpy_dtype) for value in values]
        except (TypeError, ValueError, OverflowError):
            raise problem from None
        if any(s.ndim != 2 or not spec.shape[1:].is_compatible_with(s.shape) for s in sequences):
            raise problem
        return nan_padded(sequences, spec.shape[2], spec.dtype.as_numpy_dtype)

    def run(self, values):
        """The signature's outputs for a batch of instances, as NumPy arrays (strings decoded)."""
        # Each request was checked on arrival; texts need no second look, numbers and token lists from
        # several requests must still stack (and pad) into one array of the signature's shape.
        spec = self.input_spec
        batch = values if spec.dtype == tf.string and spec.shape.rank == 1 else self.check(values)
        batch = batch if isinstance(batch, dict) else {self.input_name: batch}
        outputs = self.signature(**{name: tf.constant(array, dtype=self.input_specs[name].dtype)
                                    for name, array in batch.items()})
        return {key: _numpy(value) for key, value in outputs.items()}

    def metadata(self):
        """``GetModelMetadata``'s answer, as TensorFlow Serving's REST API gives it."""
        inputs = {name: _tensor_info(spec, f"{SIGNATURE}_{name}:0") for name, spec in sorted(self.input_specs.items())}
        outputs = {key: _tensor_info(spec, f"StatefulPartitionedCall:{i}")
                   for i, (key, spec) in enumerate(sorted(self.signature.structured_outputs.items()))}
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": {SIGNATURE: {
                "inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict",
            }}}},
        }


def find_models(path, name=None):
    """Discover the models under ``path``: ``{name: {version: directory}}``.

    ``path`` may be a run directory (``export/<name>/<v>``), an export directory of numbered
    versions (``<v>/saved_model.pb``), a single version, or a directory holding several of these.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunDirectoryError(f"{path} is not a directory; pass a run directory or an export directory")
    found = {}
    for model_name, versions in _walk(path):
        found.setdefault(name or model_name, {}).update(versions)
    if not found:
        raise RunDirectoryError(f"no SavedModel found under {path}; pass a run directory or export/<name>")
    if name and len({n for n, _ in _walk(path)}) > 1:
        raise RunDirectoryError(f"{path} holds several models; --name applies to one model only")
    for model_name in found:
        if not MODEL_NAME.match(model_name):
            raise RunDirectoryError(f"model name {model_name!r} may only hold letters, digits, '_', '-' and '.'")
    return found


def _walk(path):
    """Yield ``(name, {version: directory})`` for every model under ``path``."""
    if (path / "saved_model.pb").exists():
        numbered = VERSION.fullmatch(path.name)
        yield (path.parent.name if numbered else path.name), {int(path.name) if numbered else 1: path}
        return
    versions = {int(p.name): p for p in path.iterdir() if VERSION.fullmatch(p.name) and (p / "saved_model.pb").exists()}
    if versions:
        yield path.name, versions
        return
    if (path / "export").is_dir():
        yield from _walk(path / "export")
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from _walk(child)


def _numpy(tensor):
    return decoded(tensor.numpy())


def decoded(array):
    """``array`` with its bytes decoded as UTF-8 text (strings and numbers as they are)."""
    if array.dtype != object:
        return array
    return np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b, otypes=[object])(array)


def _encodable(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kinds(values):
    return ", ".join(sorted({type(v).__name__ for v in values}))


def shape_text(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _tensor_info(spec, tensor_name):
    return {
        "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
        "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()],
                         "unknown_rank": False},
        "name": tensor_name,
    }


