"""The OpenAPI document: FastAPI's, plus the schemas of request parts that routes parse by hand.

create_job reads its multipart stream itself (to enforce the byte limit while it arrives), so
FastAPI never sees the model its `params` part holds; the document names it here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

REF_TEMPLATE = "#/components/schemas/{model}"


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A `$ref` to `model`'s schema in the document's components (install_openapi puts it there)."""
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def install_openapi(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Serve FastAPI's document with the schemas of `models` added to its components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()  # FastAPI caches it in app.openapi_schema: this runs once
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template=REF_TEMPLATE)
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
