"""API errors as TensorFlow Serving gives them: a canonical code, its HTTP status and gRPC code."""

from typing import Any, Optional

INVALID_ARGUMENT = "INVALID_ARGUMENT"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
NOT_FOUND = "NOT_FOUND"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
UNAVAILABLE = "UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
UNIMPLEMENTED = "UNIMPLEMENTED"
INTERNAL = "INTERNAL"

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc) for the codes this server gives.
HTTP_STATUS = {INVALID_ARGUMENT: 400, FAILED_PRECONDITION: 400, NOT_FOUND: 404,
               RESOURCE_EXHAUSTED: 429, UNAVAILABLE: 503, DEADLINE_EXCEEDED: 504,
               UNIMPLEMENTED: 501, INTERNAL: 500}
TOO_LARGE = 413  # REST only: a body over --max_body_bytes (TF Serving has no such bound)


class ApiError(Exception):
  """An error the client sees as `{"error": message}` (REST) or a gRPC status.

  Attributes:
    code: the canonical code's name (a grpc.StatusCode name), e.g. "INVALID_ARGUMENT".
    status: the HTTP status code REST answers with.
    message: the one-line message.
  """

  def __init__(self, code: str, message: Any, http_status: Optional[int] = None) -> None:
    super().__init__(message)
    self.code = code
    self.status = http_status or HTTP_STATUS[code]
    self.message = " ".join(str(message).split())  # one line


def bad_request(message: str) -> ApiError:
  return ApiError(INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
  return ApiError(NOT_FOUND, message)


def internal(error: BaseException) -> ApiError:
  """INTERNAL for an exception that is a bug of the server: answer it and go on."""
  return ApiError(INTERNAL, f"internal error: {type(error).__name__}: {error}")
