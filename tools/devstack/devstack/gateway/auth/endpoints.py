"""The /auth/v1 endpoints supabase-py and supabase-js call (a GoTrue subset, autoconfirm on)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devstack.gateway import api_keys
from devstack.gateway.auth import access_tokens, sessions, users
from devstack.gateway.auth.errors import AuthError, OAuthError, bad_request, invalid_api_key, missing_api_key, render
from devstack.gateway.auth.params import check_password_strength, read_body, validate_email
from devstack.gateway.context import GatewayContext
from devstack.gateway.tokens import bearer

Handler = Callable[[Request], Awaitable[Response]]

SETTINGS = {
    "external": {"anonymous_users": True, "email": True, "phone": False},
    "disable_signup": False,
    "mailer_autoconfirm": True,
    "phone_autoconfirm": False,
    "sms_provider": "",
    "saml_enabled": False,
}
HEALTH = {
    "version": "devstack",
    "name": "GoTrue",
    "description": "GoTrue is a user registration and authentication API",
}
JWKS_CACHE_CONTROL = "public, max-age=600"
LOGOUT_SCOPES: dict[str, sessions.LogoutScope] = {
    "": "global",
    "global": "global",
    "local": "local",
    "others": "others",
}


@dataclass(frozen=True)
class Caller:
    """The user behind a request's Bearer token, and the session it names (if any)."""

    user: users.User
    session_id: uuid.UUID | None


class AuthEndpoints:
    def __init__(self, ctx: GatewayContext):
        self.ctx = ctx

    # -- plumbing ------------------------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        """Require an API key (as the hosted gateway does) and render GoTrue's errors."""

        async def endpoint(request: Request) -> Response:
            key = request.headers.get("apikey") or request.query_params.get("apikey")
            if not key:
                return missing_api_key()
            if not api_keys.key_passes(request, self.ctx.settings):
                return invalid_api_key()
            try:
                return await handler(request)
            except (AuthError, OAuthError) as exc:
                return render(request, exc)

        return endpoint

    def _session_response(self, request: Request, grant: sessions.Grant) -> JSONResponse:
        settings = self.ctx.settings
        issuer = f"{request.url.scheme}://{request.url.netloc}/auth/v1"
        token, expires_at = access_tokens.mint(
            user=grant.user,
            session_id=str(grant.session_id),
            amr=grant.amr,
            issuer=issuer,
            signer=settings.signing.snapshot().signer,
            lifetime_seconds=settings.jwt_expiry_seconds,
        )
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": settings.jwt_expiry_seconds,
                "expires_at": expires_at,
                "refresh_token": grant.refresh_token,
                "user": users.to_json(grant.user),
            }
        )

    async def _caller(self, request: Request) -> Caller:
        """GoTrue's requireAuthentication: a valid token naming an existing user and session."""
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
        claims = access_tokens.read(token, self.ctx.settings.signing.snapshot())
        subject = claims.get("sub")
        if not subject or not isinstance(subject, str):
            raise AuthError(403, "bad_jwt", "invalid claim: missing sub claim")
        try:
            user_id = uuid.UUID(subject)
        except ValueError as exc:
            raise bad_request("bad_jwt", "invalid claim: sub claim must be a UUID") from exc
        session_id: uuid.UUID | None = None
        async with self.ctx.admin.connection() as conn:
            user = await users.find_by_id(conn, user_id)
            if user is None:
                raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
            raw_session = claims.get("session_id")
            if raw_session and raw_session != str(uuid.UUID(int=0)):
                try:
                    session_id = uuid.UUID(str(raw_session))
                except ValueError as exc:
                    raise AuthError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID") from exc
                if not await sessions.exists(conn, session_id):
                    raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        return Caller(user, session_id)

    # -- endpoints -----------------------------------------------------------------------------

    async def signup(self, request: Request) -> Response:
        body = await read_body(request, self.ctx.settings.max_body_bytes)
        email, phone, password = body.text("email"), body.text("phone"), body.text("password")
        data = body.mapping("data") or {}
        async with self.ctx.admin.connection() as conn:
            if not email and not phone:
                async with conn.transaction():
                    user = await users.create(
                        conn, email=None, password=None, user_metadata=data, app_metadata={}, is_anonymous=True
                    )
                    grant = await sessions.start(conn, user, "anonymous")
                return self._session_response(request, grant)
            if not password:
                raise bad_request("validation_failed", "Signup requires a valid password")
            check_password_strength(password)
            if email and phone:
                raise bad_request(
                    "validation_failed", "Only an email address or phone number should be provided on signup."
                )
            if phone:
                raise bad_request("phone_provider_disabled", "Phone signups are disabled")
            email = validate_email(email)
            async with conn.transaction():
                if await users.email_taken(conn, email):
                    raise users.user_already_exists()
                user = await users.create(
                    conn,
                    email=email,
                    password=password,
                    user_metadata=data,
                    app_metadata={"provider": "email", "providers": ["email"]},
                    is_anonymous=False,
                )
                grant = await sessions.start(conn, user, "password")
        return self._session_response(request, grant)

    async def token(self, request: Request) -> Response:
        grant_type = request.query_params.get("grant_type", "")
        if grant_type == "password":
            return await self._password_grant(request)
        if grant_type == "refresh_token":
            body = await read_body(request, self.ctx.settings.max_body_bytes)
            presented = body.text("refresh_token")
            if not presented:
                raise OAuthError("invalid_request", "refresh_token required")
            async with self.ctx.admin.connection() as conn:
                grant = await sessions.refresh(conn, presented)
            return self._session_response(request, grant)
        raise bad_request("invalid_credentials", "unsupported_grant_type")

    async def _password_grant(self, request: Request) -> Response:
        body = await read_body(request, self.ctx.settings.max_body_bytes)
        email, phone, password = body.text("email"), body.text("phone"), body.text("password")
        if email and phone:
            raise bad_request("validation_failed", "Only an email address or phone number should be provided on login.")
        if phone:
            raise AuthError(422, "phone_provider_disabled", "Phone logins are disabled")
        if not email:
            raise bad_request("validation_failed", "missing email or phone")
        async with self.ctx.admin.connection() as conn:
            user = await users.find_by_credentials(conn, email, password)
            if user is None:
                raise bad_request("invalid_credentials", "Invalid login credentials")
            async with conn.transaction():
                grant = await sessions.start(conn, user, "password")
        return self._session_response(request, grant)

    async def get_user(self, request: Request) -> Response:
        caller = await self._caller(request)
        return JSONResponse(users.to_json(caller.user))

    async def put_user(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await read_body(request, self.ctx.settings.max_body_bytes)
        email, phone, password = body.text("email"), body.text("phone"), body.text("password")
        data = body.mapping("data")
        if (email and email.lower() != caller.user["email"]) or phone:
            # Changing them needs GoTrue's confirmation mails, which the local stack does not send.
            raise AuthError(422, "validation_failed", "Changing email or phone is not supported by the local stack")
        if password:
            if caller.user["is_anonymous"]:
                raise AuthError(
                    422,
                    "validation_failed",
                    "Updating password of an anonymous user without an email or phone is not allowed",
                )
            check_password_strength(password)
        async with self.ctx.admin.connection() as conn, conn.transaction():
            user, same_password = await users.update(
                conn, caller.user["id"], password=password or None, user_metadata_patch=data
            )
        if same_password:
            raise AuthError(422, "same_password", "New password should be different from the old password.")
        return JSONResponse(users.to_json(user))

    async def logout(self, request: Request) -> Response:
        caller = await self._caller(request)
        raw_scope = request.query_params.get("scope", "")
        scope = LOGOUT_SCOPES.get(raw_scope)
        if scope is None:
            raise bad_request("validation_failed", f'Unsupported logout scope "{raw_scope}"')
        async with self.ctx.admin.connection() as conn, conn.transaction():
            await sessions.logout(conn, caller.user["id"], caller.session_id, scope)
        return Response(status_code=204)

    async def settings(self, _request: Request) -> Response:
        return JSONResponse(SETTINGS)

    async def health(self, _request: Request) -> Response:
        return JSONResponse(HEALTH)

    async def jwks(self, _request: Request) -> Response:
        """The public keys of the standby, current and previously used asymmetric keys; never the
        legacy secret (doc §2.2; empty with DEVSTACK_JWT=legacy, as for a legacy-only project)."""
        document = self.ctx.settings.signing.snapshot().jwks_document()
        return JSONResponse(document, headers={"Cache-Control": JWKS_CACHE_CONTROL})
