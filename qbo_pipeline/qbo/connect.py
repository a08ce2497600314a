"""Connect companies and open clients for them from the settings and the token store.

* :func:`login` runs the authorisation-code flow for real QBO (browser and loopback listener, or a
  pasted redirect URL) and stores the tokens;
* :func:`login_embedded` does the same against the embedded sandbox, which consents by itself;
* :func:`served_companies` finds the embedded companies connected at a running server, which
  every command then reads there (never a sandbox a command would start itself);
* :func:`open_client` gives a ready :class:`QBOClient` for a connected realm;
* :func:`logout` revokes a grant and forgets it.
"""

from __future__ import annotations

import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests

from qbo_pipeline.config import (
    EMBEDDED_CLIENT_ID,
    EMBEDDED_CLIENT_SECRET,
    ConfigError,
    Endpoints,
    Environment,
    Secret,
    Settings,
)
from qbo_pipeline.qbo.auth import (
    AppCredentials,
    AuthorizationFailed,
    OAuthFlow,
    RedirectListener,
    TokenGrant,
)
from qbo_pipeline.qbo.faults import TransportError
from qbo_pipeline.qbo.http import QBOClient, RetryPolicy
from qbo_pipeline.qbo.limiter import RealmLimiter
from qbo_pipeline.qbo.provider import StaticTokenProvider, StoredTokenProvider
from qbo_pipeline.qbo.redact import get_logger
from qbo_pipeline.qbo.tokens import RealmTokens, TokenStore, resolve_passphrase

log = get_logger(__name__)

DEFAULT_REFRESH_LIFETIME = timedelta(days=100)
"""Intuit's refresh-token lifetime, used when the token answer does not say."""


def app_credentials(settings: Settings, environment: Environment) -> AppCredentials:
    """The OAuth app keys for an environment.

    The embedded sandbox takes ``QBO_CLIENT_ID``/``QBO_CLIENT_SECRET`` when the settings carry
    them, else ``QBO_SANDBOX_CLIENT_ID``/``QBO_SANDBOX_CLIENT_SECRET``, else its documented
    defaults. Real QBO needs the developer app's keys in the settings.

    Raises:
        ConfigError: If real QBO is asked for without keys.
    """
    if environment is Environment.EMBEDDED:
        if settings.environment is Environment.EMBEDDED and settings.client_id:
            secret = settings.client_secret or Secret(EMBEDDED_CLIENT_SECRET)
            return AppCredentials(settings.client_id, secret)
        return AppCredentials(
            settings.sandbox_client_id or EMBEDDED_CLIENT_ID,
            settings.sandbox_client_secret or Secret(EMBEDDED_CLIENT_SECRET),
        )
    if not (settings.client_id and settings.client_secret):
        raise ConfigError(
            f"connecting to QBO {environment.value} needs QBO_CLIENT_ID and QBO_CLIENT_SECRET "
            "(the keys of your Intuit developer app)"
        )
    return AppCredentials(settings.client_id, settings.client_secret)


def open_store(settings: Settings, passphrase: Secret | None = None) -> TokenStore:
    """The token store of the settings, opened with the given or resolved passphrase."""
    return TokenStore(settings.token_store_path, passphrase or resolve_passphrase(settings))


def flow_for(settings: Settings, record: RealmTokens, api_base: str | None = None) -> OAuthFlow:
    """The OAuth flow that refreshes (or revokes) a stored realm's tokens."""
    environment = Environment(record.environment)
    endpoints = Endpoints.for_environment(environment, base_url=api_base or record.api_base)
    if environment is Environment.EMBEDDED and record.client_id and record.client_secret:
        credentials = AppCredentials(record.client_id, record.client_secret)
    else:
        credentials = app_credentials(settings, environment)
    return OAuthFlow(endpoints, credentials, settings.redirect_uri)


def open_client(
    settings: Settings,
    realm_id: str,
    *,
    passphrase: Secret | None = None,
    api_base: str | None = None,
    limiter: RealmLimiter | None = None,
    batch_limiter: RealmLimiter | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> QBOClient:
    """A client for a connected company.

    Args:
        settings: The settings (token store path, app keys).
        realm_id: The company.
        passphrase: The token store passphrase (default: resolved from the environment).
        api_base: Override the stored API host (the embedded sandbox's current port).
        limiter: Override the realm's shared limiter (tests).
        batch_limiter: Override the realm's shared limiter of batch requests (tests).
        retry: The retry policy.
        timeout: Seconds per HTTP call.
        sleep: How the client waits between retries (injectable for tests).

    Raises:
        NotConnectedError: If the company is not in the token store.
        TokenStoreError: If the store cannot be opened.
        ConfigError: If the company lives in the embedded sandbox a command starts itself and
            no ``api_base`` says where that sandbox runs now.
    """
    store = open_store(settings, passphrase)
    record = store.get(realm_id)
    environment = Environment(record.environment)
    if record.managed_sandbox and not api_base:
        raise ConfigError(
            f"company {realm_id} lives in the embedded sandbox a command starts on its state "
            "file; open it through a command (`qbo-backup backup`), or connect it at a running "
            "sandbox with `qbo-backup auth login --base-url`"
        )
    base = api_base or record.api_base
    endpoints = Endpoints.for_environment(environment, base_url=base)
    provider = StoredTokenProvider(
        store, realm_id, lambda current: flow_for(settings, current, api_base=base)
    )
    return QBOClient(
        realm_id,
        endpoints=endpoints,
        tokens=provider,
        limiter=limiter,
        batch_limiter=batch_limiter,
        retry=retry,
        timeout=timeout,
        sleep=sleep,
        environment=environment.value,
    )


def connected_realms(settings: Settings, *, passphrase: Secret | None = None) -> list[str]:
    """The realm ids connected for the settings' environment (empty when none or no store).

    With ``QBO_BASE_URL`` set, only the companies connected at that server.
    """
    store = open_store(settings, passphrase)
    return [
        t.realm_id
        for t in store.list()
        if t.environment == settings.environment.value
        and (settings.base_url is None or t.api_base.rstrip("/") == settings.base_url)
    ]


@dataclass(frozen=True)
class ServedCompanies:
    """Embedded companies connected at a running server, where commands read them.

    Attributes:
        realm_ids: The companies.
        base_url: The one server they were asked for at (``QBO_BASE_URL``), or None: each at
            the base it was connected at.
        servers: The base URLs they are read at.
    """

    realm_ids: list[str]
    base_url: str | None
    servers: tuple[str, ...]


def served_companies(
    settings: Settings, *, passphrase: Secret | None = None
) -> ServedCompanies | None:
    """The embedded companies served by a running server, or None to start the embedded sandbox.

    * ``QBO_BASE_URL`` set: the companies connected at that server; when none is yet, every
      company it serves is connected through its auto-consenting OAuth flow.
    * Otherwise the companies connected at a running server (``auth login --base-url``), each
      read at the base it was connected at: a command never starts a sandbox of its own then,
      so it never reads a company other than the one connected.
    * Otherwise None: the command starts the embedded sandbox on its state file.

    Raises:
        ValueError: If the settings are not the embedded environment.
        TransportError: If a server the companies were connected at does not answer: nothing
            is started in its place.
    """
    if settings.environment is not Environment.EMBEDDED:
        raise ValueError("served_companies is for the embedded environment")
    store = open_store(settings, passphrase)
    embedded = [t for t in store.list() if t.environment == Environment.EMBEDDED.value]
    if settings.base_url:
        realms = [
            t.realm_id
            for t in embedded
            if not t.managed_sandbox and t.api_base.rstrip("/") == settings.base_url
        ]
        if not realms:
            realms = login_embedded(settings, settings.base_url, passphrase=passphrase)
        _check_answers(settings.base_url, realms)
        return ServedCompanies(realms, settings.base_url, (settings.base_url,))
    running = [t for t in embedded if not t.managed_sandbox]
    if not running:
        return None
    ignored = [t.realm_id for t in embedded if t.managed_sandbox]
    if ignored:
        log.warning(
            "not using %s, connected to the embedded sandbox a command starts, while companies "
            "are connected at a running server (`qbo-backup auth logout REALM` forgets them)",
            ", ".join(ignored),
        )
    servers = tuple(sorted({t.api_base for t in running}))
    for server in servers:
        _check_answers(server, [t.realm_id for t in running if t.api_base == server])
    return ServedCompanies([t.realm_id for t in running], None, servers)


def _check_answers(base_url: str, realm_ids: list[str]) -> None:
    """Fail at once, naming the server and its companies, when it does not answer at all."""
    try:
        requests.head(base_url, timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        which = "company " if len(realm_ids) == 1 else "companies "
        raise TransportError(
            f"{which}{', '.join(realm_ids)} connected at {base_url}, which does not answer "
            f"({type(exc).__name__}); start that server again, or set QBO_BASE_URL to where it "
            "runs now (`qbo-backup auth logout REALM` forgets a company); no other sandbox is "
            "started in its place"
        ) from None


@dataclass(frozen=True)
class Connected:
    """What a login connected."""

    realm_id: str
    company_name: str | None
    environment: Environment
    refresh_expires_at: datetime


def store_grant(
    store: TokenStore,
    grant: TokenGrant,
    *,
    environment: Environment,
    endpoints: Endpoints,
    credentials: AppCredentials,
    managed_sandbox: bool = False,
) -> Connected:
    """Look up the company's name and store the grant's tokens.

    ``managed_sandbox`` marks a company of the embedded sandbox a command started itself on its
    state file (its base URL is that run's port only).
    """
    if not grant.realm_id:
        raise AuthorizationFailed("the authorisation did not say which company (no realmId)")
    company_name = _company_name(grant, endpoints)
    now = datetime.now(UTC)
    refresh_expires = grant.refresh_expires_at or now + DEFAULT_REFRESH_LIFETIME
    if grant.refresh_token is None:
        raise AuthorizationFailed("the token endpoint answered without a refresh token")
    keep_secret = environment is Environment.EMBEDDED
    record = RealmTokens(
        realm_id=grant.realm_id,
        environment=environment.value,
        api_base=endpoints.api_base,
        access_token=grant.access_token,
        access_expires_at=grant.access_expires_at,
        refresh_token=grant.refresh_token,
        refresh_expires_at=refresh_expires,
        company_name=company_name,
        client_id=credentials.client_id,
        client_secret=credentials.client_secret if keep_secret else None,
        access_issued_at=grant.issued_at,
        connected_at=now,
        managed_sandbox=managed_sandbox,
    )
    store.put(record)
    log.info(
        "connected %s (realm %s, %s)", company_name or "a company", grant.realm_id, environment
    )
    return Connected(grant.realm_id, company_name, environment, refresh_expires)


def _company_name(grant: TokenGrant, endpoints: Endpoints) -> str | None:
    assert grant.realm_id is not None
    client = QBOClient(
        grant.realm_id,
        endpoints=endpoints,
        tokens=StaticTokenProvider(grant.access_token),
        retry=RetryPolicy(max_attempts=3),
        timeout=60.0,
    )
    with client:
        try:
            info = client.company_info()
        except Exception as exc:  # the name is a nicety: never fail a login over it
            log.warning("could not read the company's name: %s", exc)
            return None
    name = info.get("CompanyName") or info.get("LegalName")
    return str(name) if name else None


def login_embedded(
    settings: Settings,
    base_url: str,
    *,
    passphrase: Secret | None = None,
    realm_hint: str | None = None,
    credentials: AppCredentials | None = None,
    managed: bool = False,
) -> list[str]:
    """Connect the embedded sandbox's companies through its auto-consenting OAuth flow.

    No browser is involved: the authorise URL answers with a redirect carrying the code at once.

    Args:
        settings: The settings (token store path, redirect URI).
        base_url: The sandbox's base URL (``http://127.0.0.1:PORT``).
        passphrase: The token store passphrase (default: resolved; embedded has a default).
        realm_hint: Connect only this company; by default every company the sandbox serves.
        credentials: Override the OAuth client id and secret.
        managed: The sandbox is the one this command started on its state file (its port is
            this run's only); otherwise it runs at ``base_url``, and commands read it there.

    Returns:
        The connected realm ids.
    """
    endpoints = Endpoints.for_environment(Environment.EMBEDDED, base_url=base_url)
    credentials = credentials or app_credentials(settings, Environment.EMBEDDED)
    flow = OAuthFlow(endpoints, credentials, settings.redirect_uri)
    store = open_store(settings, passphrase)
    hints: list[str | None] = [realm_hint] if realm_hint else list(_sandbox_realms(base_url))
    connected: list[str] = []
    for hint in hints or [None]:
        request = flow.authorization_url(realm_hint=hint)
        try:
            answer = requests.get(request.url, allow_redirects=False, timeout=30)
        except requests.RequestException as exc:
            raise TransportError(
                f"cannot reach the embedded sandbox at {base_url}: {type(exc).__name__}"
            ) from None
        location = answer.headers.get("Location")
        if answer.status_code not in (301, 302, 303, 307) or not location:
            raise AuthorizationFailed(
                f"the embedded sandbox did not consent (HTTP {answer.status_code}); "
                "is it running with auto-consent?"
            )
        grant = flow.exchange(location, state=request.state)
        done = store_grant(
            store,
            grant,
            environment=Environment.EMBEDDED,
            endpoints=endpoints,
            credentials=credentials,
            managed_sandbox=managed,
        )
        if done.realm_id not in connected:
            connected.append(done.realm_id)
    return connected


def _sandbox_realms(base_url: str) -> list[str]:
    """The realms the embedded sandbox serves, from its admin endpoint (not part of QBO)."""
    try:
        answer = requests.get(f"{base_url.rstrip('/')}/_sandbox/realms", timeout=10)
        doc = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return []
    items = doc.get("realms") if isinstance(doc, dict) else doc
    realms: list[str] = []
    for item in items or []:
        realm = item.get("realmId") or item.get("realm_id") if isinstance(item, dict) else item
        if isinstance(realm, str | int) and str(realm):
            realms.append(str(realm))
    return realms


def login(
    settings: Settings,
    *,
    environment: Environment | None = None,
    open_browser: bool = True,
    redirect_url: str | None = None,
    base_url: str | None = None,
    passphrase: Secret | None = None,
    show: Callable[[str], None] = print,
    ask: Callable[[str], str] = input,
    wait_seconds: float = 300.0,
) -> Connected:
    """Connect a real QBO company with the authorisation-code flow.

    Args:
        settings: The settings (app keys, redirect URI, token store).
        environment: ``sandbox`` or ``production`` (default: the settings').
        open_browser: Open the consent page and catch the redirect on the loopback listener;
            otherwise print the URL and ask for the redirect URL to be pasted.
        redirect_url: A redirect URL obtained earlier (no browser, no prompt; the state of that
            earlier request cannot be checked).
        base_url: A QBO-compatible server serving the API and OAuth2 (default: the settings'
            ``QBO_BASE_URL``, else Intuit's).
        passphrase: The token store passphrase.
        show: Prints a line for the user.
        ask: Asks the user for a line.
        wait_seconds: How long to wait for the browser.
    """
    environment = environment or settings.environment
    if environment is Environment.EMBEDDED:
        raise ValueError("use login_embedded for the embedded sandbox")
    endpoints = Endpoints.for_environment(environment, base_url=base_url or settings.base_url)
    credentials = app_credentials(settings, environment)
    flow = OAuthFlow(endpoints, credentials, settings.redirect_uri)
    store = open_store(settings, passphrase)
    if redirect_url:
        log.warning("using a pasted redirect URL: its state cannot be checked against a request")
        grant = flow.exchange(redirect_url, state=None)
    else:
        request = flow.authorization_url()
        if open_browser:
            with RedirectListener(settings.redirect_uri) as listener:
                show(f"Opening your browser to connect a QuickBooks company:\n{request.url}")
                if not webbrowser.open(request.url):
                    show("Could not open a browser: open the URL above yourself.")
                received = listener.wait(wait_seconds)
        else:
            show(f"Open this URL in a browser and approve the connection:\n{request.url}")
            received = ask("Paste the full URL your browser was redirected to: ")
        grant = flow.exchange(received, state=request.state)
    return store_grant(
        store, grant, environment=environment, endpoints=endpoints, credentials=credentials
    )


def logout(settings: Settings, realm_id: str, *, passphrase: Secret | None = None) -> bool:
    """Revoke a company's grant (best effort) and forget its tokens.

    Returns:
        Whether Intuit (or the sandbox) confirmed the revocation.

    Raises:
        NotConnectedError: If the company is not connected.
    """
    store = open_store(settings, passphrase)
    record = store.get(realm_id)
    revoked = False
    try:
        revoked = flow_for(settings, record).revoke(record.refresh_token)
    except (TransportError, ConfigError, ValueError) as exc:
        log.warning("could not revoke the grant of realm %s: %s", realm_id, exc)
    store.remove(realm_id)
    return revoked
