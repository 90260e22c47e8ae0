"""Secret configuration values: given inline, by environment variable or by file; never shown.

In the YAML configuration a secret is the value itself or a reference to it::

    sasl_plain_password: {env: KAFKA_PASSWORD}          # an environment variable
    sasl_plain_password: {file: /run/secrets/kafka}     # a file (relative: to the config file)

Either way the validated value is a pydantic ``SecretStr``, whose ``repr`` and
``str`` are ``'**********'``: a configuration object can be printed or logged,
and only ``get_secret_value()`` at the client that needs it reveals the value.
Validation errors name the variable or the file, never their content.

This module sits in the exporters layer, the lowest one with configuration
types, so the collector's settings and the exporters' own (OTLP headers) share it.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, SecretStr, ValidationInfo

BASE_DIR = "base_dir"
"""The validation-context key of the folder that relative secret files are read from."""


def read_secret_file(path: Path) -> str:
    """The content of a secret file without its trailing newline; ValueError if unreadable or empty."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"cannot read the secret file {path}: {reason}") from None
    if not value:
        raise ValueError(f"the secret file {path} is empty")
    return value


def read_secret_env(name: str) -> str:
    """The value of an environment variable holding a secret; ValueError if unset or empty."""
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"the environment variable {name} is not set")
    return value


def _resolve(value: Any, info: ValidationInfo) -> Any:
    """Turn ``{env: NAME}`` or ``{file: PATH}`` into the secret's value; pass strings on."""
    if isinstance(value, SecretStr | str):
        return value
    if not isinstance(value, dict):
        raise ValueError("a secret is a string, {env: NAME} or {file: PATH}")
    if set(value) == {"env"} and isinstance(value["env"], str):
        return read_secret_env(value["env"])
    if set(value) == {"file"} and isinstance(value["file"], str):
        base = (info.context or {}).get(BASE_DIR, Path.cwd())
        return read_secret_file(Path(base) / value["file"])
    raise ValueError("a secret reference has one key, env or file, naming a variable or a path")


Secret = Annotated[SecretStr, BeforeValidator(_resolve)]
"""A configuration value that is a secret (see the module docstring)."""


def reveal(secrets: Mapping[str, SecretStr]) -> dict[str, str]:
    """The plain values of a mapping of secrets (OTLP headers), for the client that sends them."""
    return {name: value.get_secret_value() for name, value in secrets.items()}


def secret_fields(model: type[BaseModel]) -> set[tuple[str, ...]]:
    """The locations of every secret in a model and its nested models, as field-name tuples.

    A secret inside a mapping (OTLP headers) is reported at the mapping, so
    every location under it counts as secret too.
    """
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        if _holds_secret(field.annotation):
            found.add((name,))
        for nested in _models_in(field.annotation):
            found.update((name, *inner) for inner in secret_fields(nested))
    return found


def _holds_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Models a field holds directly (``X``, ``X | None``), not inside mappings or lists."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    candidates = typing.get_args(annotation) if union else (annotation,)
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
