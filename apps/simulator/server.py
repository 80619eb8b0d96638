"""SimServer: one simulated Argo CD instance (HTTP server + store + controller thread)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from . import appset_controller, auth, secret
from .handlers import applications as app_handlers
from .handlers import appsets as appset_handlers
from .handlers import infra as infra_handlers
from .handlers import projects as project_handlers
from .handlers import session as session_handlers
from .httpd import Faults, Request, Router, SimHTTPServer
from .state import State

TICK_SECONDS = 0.05


class SimServer:
    """A fake Argo CD REST server. `start()` serves in background threads and returns self."""

    def __init__(
        self,
        port: int = 0,
        name: str = "sim",
        apps: int = 20,
        projects: int = 3,
        seed: int = 1,
        latency_ms: float = 0,
        jitter_ms: float = 0,
        fail_rate: float = 0.0,
        sync_seconds: float = 1.0,
        admin_password: str = "password",
        portal_password: str = "portal-password",
        host: str = "127.0.0.1",
        policy_csv: str = "",
        content_types: tuple[str, ...] = ("application/json",),
        secret_file: str | Path | None = None,
        app_namespaces: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.faults = Faults(
            latency_ms=latency_ms, jitter_ms=jitter_ms, fail_rate=fail_rate, garbage=False, sync_seconds=sync_seconds
        )
        self.state = State(
            name, apps, projects, seed, admin_password, portal_password, self.faults, policy_csv, app_namespaces
        )
        self.secret_file = Path(secret_file) if secret_file else None
        if self.secret_file:
            self.state.secret_key, tokens = secret.load(self.secret_file)
            for account_name, items in tokens.items():
                if account_name in self.state.accounts:
                    self.state.accounts[account_name].tokens = items
        self.content_types = {c.lower() for c in content_types}
        self.router = Router()
        session_handlers.register(self.router, self)
        app_handlers.register(self.router, self)
        appset_handlers.register(self.router, self)
        project_handlers.register(self.router, self)
        infra_handlers.register(self.router, self)
        self._httpd: SimHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._controller_thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SimServer:
        appset_controller.tick(self.state, force=True)  # seeded sets start reconciled
        self._httpd = SimHTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name=f"{self.name}-http", daemon=True
        )
        self._serve_thread.start()
        self._controller_thread = threading.Thread(target=self._controller, name=f"{self.name}-controller", daemon=True)
        self._controller_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.stopping.set()
            self._httpd.shutdown()
            self._httpd.close_all()
            self._httpd.server_close()
        for thread in (self._serve_thread, self._controller_thread):
            if thread is not None:
                thread.join(timeout=3)
        with self.state.lock:
            for sub in list(self.state.subscribers):
                sub.closed.set()
            self.state.subscribers.clear()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _controller(self) -> None:
        # One controller thread per server, driven by a fixed tick (not a thread per operation).
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.state.tick()
                appset_controller.tick(self.state)
            except Exception:  # noqa: BLE001 - a bug in one tick must not kill the controller
                import traceback

                traceback.print_exc()

    # ------------------------------------------------------------------ public helpers

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def authenticate(self, req: Request, required: bool) -> auth.Ctx:
        return auth.authenticate(self.state, req.headers, required)

    def persist_secret(self) -> None:
        """Write the signing key and the account token lists back to the secret file, if there is one."""
        if self.secret_file:
            with self.state.lock:
                tokens = {name: list(acct.tokens) for name, acct in self.state.accounts.items() if acct.tokens}
                secret.save(self.secret_file, self.state.secret_key, tokens)

    def portal_token(self, expires_in: int = 0, token_id: str = "") -> str:
        """An API key for the seeded `portal` account, recorded like POST /api/v1/account/portal/token."""
        import uuid

        with self.state.lock:
            account = self.state.accounts["portal"]
            token_id = token_id or str(uuid.uuid4())
            token, claims = auth.issue(self.state, "portal:apiKey", expires_in, token_id)
            entry = {"id": token_id, "iat": claims["iat"]}
            if "exp" in claims:
                entry["exp"] = claims["exp"]
            account.tokens.append(entry)
        self.persist_secret()
        return token

    def login_token(self, username: str = "admin") -> str:
        return auth.login_token(self.state, username)
