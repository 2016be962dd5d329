"""The server's OpenAPI 3 description, narrowed to the models it serves."""

import json

import tensorflow as tf

from ..export import SIGNATURE
from .model import MODEL_NAME


def openapi(inputs=None):
    """The OpenAPI description of the server.

    ``inputs`` (``{name: {version: [input TensorSpec, ...]}}``, each spec named after one of the signature's
    inputs) narrows it to what one server serves: its model names and versions, and request bodies of its
    inputs' types and shapes (an instance of several inputs is an object of them all). Without it, any name,
    version and JSON value is described.
    """
    name, version = {"type": "string", "pattern": MODEL_NAME.pattern}, {"type": "integer", "minimum": 0}
    value, instance = {}, {}  # one raw input; one item of "instances"
    named_columns = {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "additionalProperties": {"type": "array", "minItems": 1, "items": {}}}
    if inputs:
        signatures = [specs for versions in inputs.values() for specs in versions.values()]
        single = [specs[0] for specs in signatures if len(specs) == 1]
        name = {"type": "string", "enum": sorted(inputs)}
        version = {"type": "integer", "enum": sorted({v for versions in inputs.values() for v in versions})}
        value = _any_of([_value_schema(spec) for spec in single]) if single else {"not": {}}
        instance = _any_of([_any_of([_value_schema(spec), _named(spec.name, _value_schema(spec))]) for spec in single]
                           + [_named_all({s.name: _value_schema(s) for s in specs})
                              for specs in signatures if len(specs) > 1])
        named_columns = _any_of([_named_all({spec.name: {"type": "array", "minItems": 1, "items": _value_schema(spec)}
                                             for spec in specs}) for specs in signatures])
    columns = {"type": "array", "minItems": 1, "items": value}
    error = {"$ref": "#/components/responses/Error"}
    schemas = {
        "PredictRequest": {
            "type": "object", "description": "exactly one of instances (row format) and inputs (columnar format)",
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
            "properties": {
                "signature_name": {"type": "string", "enum": [SIGNATURE, ""]},
                "instances": {"type": "array", "minItems": 1, "items": instance,
                              "description": "one raw input per item, or an object {input name: raw input}"},
                "inputs": {"anyOf": [columns, named_columns],
                           "description": "a list of raw inputs, or an object {input name: list of raw inputs}"},
            }},
        "PredictResponse": {
            "type": "object", "oneOf": [{"required": ["predictions"]}, {"required": ["outputs"]}],
            "properties": {
                "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                "outputs": {"anyOf": [
                    {"type": "object", "required": ["label", "probabilities"], "properties": {
                        "label": {"type": "array", "items": {"$ref": "#/components/schemas/Label"}},
                        "probabilities": {"type": "array", "items": {"$ref": "#/components/schemas/Probabilities"}}}},
                    {"type": "object", "required": ["output", "score"], "properties": {
                        "output": {"type": "array", "items": {"type": "string"}},
                        "score": {"type": "array", "items": {"type": "number"}}}}]},
            }},
        "Prediction": {"anyOf": [
            {"type": "object", "required": ["label", "probabilities"], "properties": {
                "label": {"$ref": "#/components/schemas/Label"},
                "probabilities": {"$ref": "#/components/schemas/Probabilities"},
                "attention": {"type": "array", "items": {"type": "number"},
                              "description": "models pooling by attention: the weight of each step read"},
                "steps": {"type": "array", "items": {"type": "string"},
                          "description": "models pooling by attention: the token (or first input step) of each step"}}},
            {"type": "object", "required": ["output", "score"], "description": "a sequence-to-sequence model's answer",
             "properties": {"output": {"type": "string"}, "score": {"type": "number",
                                                                     "description": "mean log-probability per symbol"}}}]},
        "Label": {"description": "a class name; a list of them (one per step) for models that label every step",
                  "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "Probabilities": {"type": "array", "description": "one per class; one such list per step for per-step models",
                          "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}},
        "ModelStatus": {"type": "object", "required": ["model_version_status"], "properties": {
            "model_version_status": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["version", "state", "status"], "properties": {
                    "version": {"type": "string", "pattern": "^[0-9]+$"},
                    "state": {"type": "string", "enum": ["AVAILABLE"]},
                    "status": {"type": "object", "required": ["error_code", "error_message"], "properties": {
                        "error_code": {"type": "string"}, "error_message": {"type": "string"}}}}}}}},
        "ModelMetadata": {"type": "object", "required": ["model_spec", "metadata"], "properties": {
            "model_spec": {"type": "object", "required": ["name", "signature_name", "version"], "properties": {
                "name": {"type": "string"}, "signature_name": {"type": "string"},
                "version": {"type": "string", "pattern": "^[0-9]+$"}}},
            "metadata": {"type": "object", "required": ["signature_def"], "properties": {
                "signature_def": {"type": "object", "required": ["signature_def"], "properties": {
                    "signature_def": {"type": "object", "required": [SIGNATURE]}}}}}}},
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "Ready": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["ready", "loading"]},
            "models": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}}}},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
    }

    def answer(description, schema):
        return {"description": description, "content": {"application/json": {"schema": {
            "$ref": f"#/components/schemas/{schema}"}}}}

    paths = {}
    name = {"name": "name", "in": "path", "required": True, "schema": name}
    version = {"name": "version", "in": "path", "required": True, "schema": version}
    for prefix, parameters, which in (("/v1/models/{name}", [name], "the latest version"),
                                      ("/v1/models/{name}/versions/{version}", [name, version], "one version")):
        paths[prefix + ":predict"] = {"post": {
            "summary": f"Predict with {which}", "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/PredictRequest"}}}},
            "responses": {"200": answer("predictions (row format) or outputs (columnar format)", "PredictResponse"),
                          "400": error, "404": error, "413": error, "500": error},
        }}
        paths[prefix] = {"get": {"summary": f"Status of {which} (all versions without /versions)",
                                 "parameters": parameters,
                                 "responses": {"200": answer("model_version_status", "ModelStatus"), "404": error}}}
        paths[prefix + "/metadata"] = {"get": {
            "summary": f"Signature of {which}", "parameters": parameters,
            "responses": {"200": answer("model_spec and signature_def", "ModelMetadata"), "404": error}}}
    paths["/healthz"] = {"get": {"summary": "Liveness", "responses": {"200": answer("alive", "Health")}}}
    paths["/readyz"] = {"get": {"summary": "Readiness: models loaded", "responses": {
        "200": answer("ready", "Ready"), "503": answer("still loading", "Ready")}}}
    paths["/openapi.json"] = {"get": {"summary": "This description", "responses": {
        "200": {"description": "OpenAPI 3.0 document",
                "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "seqclf model server", "version": "1",
                 "description": "TensorFlow Serving's REST API (predict, status, metadata) for seqclf exports."},
        "paths": paths,
        "components": {"schemas": schemas, "responses": {"Error": answer("error", "Error")}},
    }


def _any_of(schemas):
    unique = list({json.dumps(schema, sort_keys=True): schema for schema in schemas}.values())
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


def _named(key, schema):
    return _named_all({key: schema})


def _named_all(schemas):
    """An object holding exactly the keys of ``schemas``, each value of its schema."""
    return {"type": "object", "required": sorted(schemas), "additionalProperties": False, "properties": schemas}


def _value_schema(spec):
    """JSON schema of one raw input of ``spec`` (its batch axis left out)."""
    if spec.shape.rank is None:
        return {}
    if spec.dtype == tf.string:  # a text, or a list of tokens ("" is the padding, not a token)
        schema = {"type": "string", **({"minLength": 1} if spec.shape.rank > 1 else {})}
    elif spec.dtype.is_floating:
        schema = {"type": "number"}
    elif spec.dtype.is_integer:
        schema = {"type": "integer"}
    else:
        return {}
    for size in reversed(spec.shape.as_list()[1:]):
        schema = {"type": "array", "minItems": size or 1, "items": schema, **({"maxItems": size} if size else {})}
    return schema


OPENAPI = openapi()


