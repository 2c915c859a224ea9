"""HTTP Basic for the API clients of the example project (and its schemathesis run)."""

from typing import Any

from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed


class BasicAuthenticationWithoutNul(BasicAuthentication):
    """DRF's Basic auth, refusing a NUL in the credentials with its usual 401.

    PostgreSQL cannot compare a text containing NUL, so the user lookup would fail
    as a 500 instead.
    """

    def authenticate_credentials(
        self, userid: str, password: str, request: Any = None
    ) -> tuple[Any, None]:
        if "\x00" in userid or "\x00" in password:
            raise AuthenticationFailed("Invalid username/password.")
        return super().authenticate_credentials(userid, password, request)
