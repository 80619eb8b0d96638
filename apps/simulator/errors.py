"""Argo CD error shapes: gRPC status codes as grpc-gateway v1.16 renders them over HTTP."""

from __future__ import annotations

import json

# gRPC code -> HTTP status, as in grpc-gateway v1.16 runtime.HTTPStatusFromCode.
GRPC_TO_HTTP: dict[int, int] = {
    0: 200,
    1: 408,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,  # FailedPrecondition is deliberately 400, not 412
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}

HTTP_REASON: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

CANCELED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
ABORTED = 10
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


class ApiError(Exception):
    """An error a handler raises; rendered as the gateway's unary or stream error body."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return GRPC_TO_HTTP.get(self.code, 500)

    def body(self) -> bytes:
        # `error` and `message` are identical in grpc-gateway v1.16; `details` is omitted when empty.
        return json.dumps(
            {"error": self.message, "code": self.code, "message": self.message}, separators=(",", ":")
        ).encode()

    def stream_body(self) -> bytes:
        status = self.http_status
        payload = {
            "error": {
                "grpc_code": self.code,
                "http_code": status,
                "message": self.message,
                "http_status": HTTP_REASON.get(status, "Unknown"),
            }
        }
        return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def invalid(message: str) -> ApiError:
    return ApiError(INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    return ApiError(NOT_FOUND, message)


def denied(message: str = "permission denied") -> ApiError:
    return ApiError(PERMISSION_DENIED, message)


def unauthenticated(message: str = "no session information") -> ApiError:
    return ApiError(UNAUTHENTICATED, message)


def precondition(message: str) -> ApiError:
    return ApiError(FAILED_PRECONDITION, message)


def exists(message: str) -> ApiError:
    return ApiError(ALREADY_EXISTS, message)


def unknown(message: str) -> ApiError:
    return ApiError(UNKNOWN, message)
