"""A small OpenID Connect provider for `make demo` and the tests, built on authlib's authorization server classes.

Authorization code flow with PKCE (S256 required) and nonce, ID tokens signed RS256 with a key generated at
start, a discovery document, JWKS and userinfo. Users and their groups are read from a JSON file at every
sign-in ({"alice": {"password": "...", "groups": [...], "email": "..."}}), so a test can change a user's groups
between two sign-ins. One client is registered at start. Development only: run it with
`manage.py demo_oidc_provider` (which refuses DEBUG=0); it prints "listening on <issuer>" once it answers.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

# The signing key is made when the provider starts (serve), not on import.
STATE: dict = {"issuer": "", "users_file": "", "codes": {}, "tokens": {}, "key": None}
LOCK = threading.Lock()


@dataclass
class User:
    username: str
    password: str
    email: str = ""
    name: str = ""
    groups: list[str] = field(default_factory=list)

    def get_user_id(self) -> str:
        return "sub-" + self.username


def load_user(username: str) -> User | None:
    with open(STATE["users_file"]) as f:
        data = json.load(f).get(username)
    return User(username=username, **data) if data else None


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "email", "profile", "groups"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return time.time() - self.auth_time > 300


class Request(OAuth2Request):
    def __init__(self, environ: dict, form: dict[str, str]):
        host = environ.get("HTTP_HOST", "127.0.0.1")
        query = environ.get("QUERY_STRING", "")
        uri = f"http://{host}{environ.get('PATH_INFO', '/')}" + (f"?{query}" if query else "")
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        super().__init__(environ["REQUEST_METHOD"], uri, headers=headers)
        self._args = dict(parse_qsl(query))
        self._form = form
        self.payload = BasicOAuth2Payload({**self._args, **form})

    @property
    def args(self) -> dict:
        return self._args

    @property
    def form(self) -> dict:
        return self._form


def user_info(user: User, scope: str) -> UserInfo:
    info = UserInfo(sub=user.get_user_id(), preferred_username=user.username, name=user.name or user.username)
    if "email" in scope:
        info["email"] = user.email
    if "groups" in scope:
        info["groups"] = list(user.groups)
    return info


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        payload = request.payload
        with LOCK:
            STATE["codes"][code] = Code(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=payload.redirect_uri,
                scope=request.scope,
                user=request.user,
                nonce=payload.data.get("nonce"),
                code_challenge=payload.data.get("code_challenge"),
                code_challenge_method=payload.data.get("code_challenge_method"),
            )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        item = STATE["codes"].get(code)
        if item and item.client_id == client.client_id and not item.is_expired():
            return item
        return None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        with LOCK:
            STATE["codes"].pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class OpenIDCodeExtension(OpenIDCode):
    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(c.nonce == nonce for c in STATE["codes"].values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return STATE["key"]

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict:
        return {"alg": "RS256", "kid": STATE["key"].kid}

    def get_client_claims(self, client: Client) -> dict:
        return {"iss": STATE["issuer"], "aud": [client.client_id]}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


class Server(AuthorizationServer):
    def __init__(self, client: Client):
        super().__init__(scopes_supported=["openid", "email", "profile", "groups"])
        self.client = client
        self.register_token_generator("default", BearerTokenGenerator(lambda **kw: secrets.token_urlsafe(32)))
        self.register_grant(CodeGrant, [OpenIDCodeExtension(require_nonce=True), CodeChallenge(required=True)])

    def query_client(self, client_id: str) -> Client | None:
        return self.client if client_id == self.client.client_id else None

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        with LOCK:
            STATE["tokens"][token["access_token"]] = (request.user, token.get("scope", ""))

    def send_signal(self, name, *args, **kwargs) -> None:
        return None

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        return request

    def handle_response(self, status: int, body, headers) -> tuple:
        if isinstance(body, dict):
            body = json.dumps(body)
        return status, body or "", list(headers)


def discovery() -> dict:
    issuer = STATE["issuer"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "preferred_username", "name", "email", "groups"],
    }


LOGIN_FORM = """<!doctype html><html><head><title>Demo provider sign-in</title></head><body>
<h1>Demo identity provider</h1>{error}
<form method="post" action="/authorize">{hidden}
<label>Username <input name="username" autocomplete="off"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>"""


def login_page(params: dict, error: str = "") -> tuple:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k not in {"username", "password"}
    )
    body = LOGIN_FORM.format(hidden=hidden, error=f'<p role="alert">{html.escape(error)}</p>' if error else "")
    return 200, body, [("Content-Type", "text/html; charset=utf-8")]


def authorize(server: Server, request: Request) -> tuple:
    try:
        grant = server.get_consent_grant(request)
    except OAuth2Error as error:
        return server.handle_error_response(request, error)
    if request.method == "GET":
        return login_page(request.args)
    user = load_user(request.form.get("username", ""))
    if user is None or not secrets.compare_digest(user.password, request.form.get("password", "")):
        return login_page(request.form, "Wrong username or password.")
    return server.create_authorization_response(request, grant_user=user, grant=grant)


def userinfo(request: Request) -> tuple:
    auth = request.headers.get("Authorization", "")
    found = STATE["tokens"].get(auth[7:]) if auth.startswith("Bearer ") else None
    if found is None:
        return 401, json.dumps({"error": "invalid_token"}), [("Content-Type", "application/json")]
    user, scope = found
    return 200, json.dumps(dict(user_info(user, scope))), [("Content-Type", "application/json")]


def make_app(server: Server):
    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode() if length else ""
        request = Request(environ, dict(parse_qsl(body)))
        path = environ.get("PATH_INFO", "/")
        json_headers = [("Content-Type", "application/json")]
        if path == "/.well-known/openid-configuration":
            status, out, headers = 200, json.dumps(discovery()), json_headers
        elif path == "/jwks":
            status, out, headers = 200, json.dumps({"keys": [STATE["key"].as_dict(private=False)]}), json_headers
        elif path == "/authorize":
            status, out, headers = authorize(server, request)
        elif path == "/token" and environ["REQUEST_METHOD"] == "POST":
            status, out, headers = server.create_token_response(request)
        elif path == "/userinfo":
            status, out, headers = userinfo(request)
        else:
            status, out, headers = 404, "not found", [("Content-Type", "text/plain")]
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        start_response(f"{status} {reason.get(status, 'Error')}", headers)
        return [out.encode() if isinstance(out, str) else out]

    return app


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:
        sys.stderr.write("oidc-provider: " + (format % args) + "\n")


def serve(port: int, users_file: str, client: Client, host: str = "127.0.0.1") -> None:
    """Answer on host:port until the process is stopped; prints "listening on <issuer>" once it answers."""
    # The demo and the tests talk plain HTTP on 127.0.0.1; authlib refuses http:// URIs unless told otherwise.
    # Set here, in the provider's own process, never in the portal's.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    STATE["key"] = RSAKey.generate_key(2048, parameters={"kid": "demo-key", "use": "sig", "alg": "RS256"})
    STATE["users_file"] = users_file
    httpd = make_server(host, port, make_app(Server(client)), ThreadingServer, QuietHandler)
    STATE["issuer"] = f"http://{host}:{httpd.server_port}"
    print(f"listening on {STATE['issuer']}", flush=True)
    httpd.serve_forever()
