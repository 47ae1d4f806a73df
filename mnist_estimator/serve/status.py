"""API errors with TensorFlow Serving's HTTP status codes (its ToHTTPStatusCode mapping)."""

BAD_REQUEST = 400         # INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
NOT_FOUND = 404           # NOT_FOUND
METHOD_NOT_ALLOWED = 405
TOO_LARGE = 413
INTERNAL = 500            # INTERNAL, UNKNOWN
UNAVAILABLE = 503         # UNAVAILABLE (e.g. the batch queue is full)


class ApiError(Exception):
  """An error the client sees as `{"error": message}` with an HTTP status code."""

  def __init__(self, status, message):
    super().__init__(message)
    self.status = status
    self.message = " ".join(str(message).split())  # one line


def bad_request(message):
  return ApiError(BAD_REQUEST, message)


def not_found(message):
  return ApiError(NOT_FOUND, message)
