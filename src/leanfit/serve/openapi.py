"""The OpenAPI document of the server's routes, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(ok: dict[str, Any] | None, *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {"description": "OK", **({"content": {"application/json": {"schema": ok}}} if ok else {})}
    }
    reasons = {
        400: "Malformed request, or it does not fit the model",
        401: "Missing or wrong bearer token",
        404: "Unknown model or version",
        413: "Body over the limit",
        415: "Unsupported Content-Encoding",
        503: "Not ready, draining, unloaded or overloaded (see Retry-After)",
        504: "The request's deadline passed",
    }
    for code in codes:
        out[str(code)] = {"description": reasons[code], "content": {"application/json": {"schema": _ERROR}}}
    return out


def _model_params(version: bool) -> list[dict[str, Any]]:
    params = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    if version:
        params.append({"name": "version", "in": "path", "required": True, "schema": {"type": "string"}})
    return params


def openapi_document(models: list[str], version: str) -> dict[str, Any]:
    """Build the document; ``models`` become the enum of the ``model`` path parameter's examples."""
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Tensor": {
            "type": "object",
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "datatype": {
                    "type": "string",
                    "enum": [
                        "BOOL",
                        "INT8",
                        "INT16",
                        "INT32",
                        "INT64",
                        "UINT8",
                        "UINT16",
                        "UINT32",
                        "UINT64",
                        "FP16",
                        "FP32",
                        "FP64",
                        "BYTES",
                    ],
                },
                "parameters": {
                    "type": "object",
                    "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
                },
                "data": {
                    "type": "array",
                    "description": "flat or nested; only its length must equal prod(shape)",
                },
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "properties": {
                        "binary_data_output": {"type": "boolean"},
                        "timeout_ms": {"type": "number", "exclusiveMinimum": 0},
                        "timeout": {"type": "integer", "description": "microseconds (Triton's)"},
                    },
                },
                "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Tensor"}},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "parameters": {
                                "type": "object",
                                "properties": {"binary_data": {"type": "boolean"}},
                            },
                        },
                    },
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            },
        },
        "PredictRequest": {
            "type": "object",
            "required": ["rows"],
            "properties": {"rows": {"type": "array", "minItems": 1, "items": {"type": "object"}}},
        },
        "PredictResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "predictions": {"type": "array"},
                "probabilities": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "classes": {"type": "array"},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
                "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            },
        },
        "DriftReport": {"type": "object"},
    }
    infer_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferRequest"}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "JSON header (Inference-Header-Content-Length bytes) followed by binary tensors",
            },
        },
    }
    predict_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
    }
    infer_headers: list[dict[str, Any]] = [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "schema": {"type": "integer"},
        },
        {"name": "X-Request-Timeout-Ms", "in": "header", "required": False, "schema": {"type": "number"}},
    ]
    infer_op = {
        "summary": "Run inference (Open Inference Protocol)",
        "requestBody": infer_body,
        "responses": _responses(
            {"$ref": "#/components/schemas/InferResponse"}, 400, 401, 404, 413, 415, 503, 504
        ),
    }
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {"summary": "Liveness", "responses": _responses(None)}},
        "/v2/health/ready": {"get": {"summary": "Readiness", "responses": _responses(None, 503)}},
        "/v2": {"get": {"summary": "Server metadata", "responses": _responses({"type": "object"}, 401)}},
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format"}}}
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": _responses({"type": "object"})}},
        "/v2/repository/index": {
            "post": {"summary": "Models and their state", "responses": _responses({"type": "array"})}
        },
        "/predict": {
            "post": {
                "summary": "Predict rows with the only model",
                "requestBody": predict_body,
                "responses": _responses(
                    {"$ref": "#/components/schemas/PredictResponse"}, 400, 401, 404, 413, 503, 504
                ),
            }
        },
        "/models/{model}/predict": {
            "post": {
                "summary": "Predict rows with a model",
                "parameters": _model_params(False),
                "requestBody": predict_body,
                "responses": _responses(
                    {"$ref": "#/components/schemas/PredictResponse"}, 400, 401, 404, 413, 503, 504
                ),
            }
        },
    }
    for prefix, versioned in (("/v2/models/{model}", False), ("/v2/models/{model}/versions/{version}", True)):
        params = _model_params(versioned)
        paths[prefix] = {
            "get": {
                "summary": "Model metadata",
                "parameters": params,
                "responses": _responses({"$ref": "#/components/schemas/ModelMetadata"}, 404),
            }
        }
        paths[prefix + "/ready"] = {
            "get": {
                "summary": "Model readiness",
                "parameters": params,
                "responses": _responses(None, 404, 503),
            }
        }
        paths[prefix + "/infer"] = {"post": {**infer_op, "parameters": params + infer_headers}}
        paths[prefix + "/drift"] = {
            "get": {
                "summary": "Drift of recent inputs against the training reference",
                "parameters": params,
                "responses": _responses({"$ref": "#/components/schemas/DriftReport"}, 404),
            }
        }
    for action in ("load", "unload"):
        paths[f"/v2/repository/models/{{model}}/{action}"] = {
            "post": {
                "summary": f"{action.title()} a model (reload from its folder, checksums verified)"
                if action == "load"
                else "Unload a model (it answers 503 until loaded again)",
                "parameters": _model_params(False),
                "responses": _responses(None, 400, 404),
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leanfit serve",
            "version": version,
            "description": "Open Inference Protocol (KServe V2) REST server; models: " + ", ".join(models),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": paths,
    }
