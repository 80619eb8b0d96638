"""Errors of the REST API: JSON `{"code": ..., "message": ...}` with a stable code and a sentence for a person."""

from __future__ import annotations

from ninja import Schema


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Error(Schema):
    code: str
    message: str
