"""What every router shares: the store, the caller, id pattern, bounds on numbers, strict input models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from accelpool.api.auth import Principal, principal
from accelpool.api.errors import ApiError
from accelpool.storage.sql import SqlStore

Who = Annotated[Principal, Depends(principal)]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def store_of(request: Request) -> SqlStore:
    return request.app.state.store  # type: ignore[no-any-return]


# Bounds on numbers from requests (422 beyond them; non-finite numbers are refused everywhere):
MAX_KRW = 10**15  # budgets, grants: a quadrillion KRW, far beyond any program, far inside BIGINT
MAX_PRICE_KRW = 10**9  # KRW per device-hour
MAX_DEVICES = 1_000_000  # per-tenant caps, quotas
MAX_TIME = 1e11  # unix seconds (year ~5138): start/end
MAX_SECONDS = 10 * 366 * 86400.0  # durations (contract length): ten years

Krw = Annotated[int, Field(strict=True, ge=0, le=MAX_KRW, description="integer KRW")]
Time = Annotated[float, Field(ge=0, le=MAX_TIME, allow_inf_nan=False, description="unix seconds")]
Devices = Annotated[int, Field(strict=True, ge=0, le=MAX_DEVICES)]
Price = Annotated[int, Field(strict=True, ge=0, le=MAX_PRICE_KRW)]


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def known_types(request: Request, types: Any, fld: str, *, star: bool = False) -> None:
    catalog = request.app.state.catalog
    for k in types:
        if not (star and k == "*") and k not in catalog:
            raise ApiError(422, f"unknown accelerator type '{k}'", f"{fld}.{k}")
