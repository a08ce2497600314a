"""The sandbox's WSGI application: QBO's paths on one host, plus ``/_sandbox/`` admin endpoints.

QBO paths: ``/connect/oauth2``, ``/oauth2/v1/tokens/bearer``, ``/v2/oauth2/tokens/revoke``,
``/.well-known/openid_configuration`` (and ``openid_sandbox_configuration``), ``/op/v1/jwks``,
``/v1/openid_connect/userinfo`` and ``/v3/company/{realmId}/...`` (query, read, create,
update, delete, void, companyinfo, preferences, cdc, batch, reports, upload, download). Every
response carries an ``intuit_tid`` header, and every JSON body the envelope ``time``.

The ``/_sandbox/`` endpoints are NOT part of QBO: ``config`` (realism switches), ``stats``,
``realms`` (GET lists them, POST creates a new company as QBO does), ``clock``, ``simulate``,
``incident`` and ``files`` (presigned attachment bytes).
"""

from __future__ import annotations

import hashlib
import html
import secrets
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from qbo_pipeline import entities
from qbo_pipeline.sandbox import (
    attachments,
    faults,
    incidents,
    new_company,
    openid,
    pdf,
    reports,
    shapes,
    simulate,
    tax_service,
    xml_wire,
)
from qbo_pipeline.sandbox.batch import run_batch
from qbo_pipeline.sandbox.cdc import change_data_capture
from qbo_pipeline.sandbox.clock import COMPANY_TZ, qbo_time
from qbo_pipeline.sandbox.faults import SandboxFault
from qbo_pipeline.sandbox.oauth import (
    HARD_EXPIRY_HEADER,
    AccessDenied,
    OAuthError,
    OAuthService,
    WrongRealm,
)
from qbo_pipeline.sandbox.operations import Operations
from qbo_pipeline.sandbox.query import QueryEngine
from qbo_pipeline.sandbox.realism import FaultRule, Realism
from qbo_pipeline.sandbox.store import SandboxStore, UnknownRealmError

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml"
MAX_JSON_BODY = 10 * 1024 * 1024
MAX_REQUEST_ID = 50

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_URLS = Map(
    [
        Rule("/connect/oauth2", endpoint="authorize", methods=["GET", "POST"]),
        Rule("/oauth2/v1/tokens/bearer", endpoint="token", methods=["POST"]),
        Rule("/v2/oauth2/tokens/revoke", endpoint="revoke", methods=["POST"]),
        Rule(
            "/.well-known/<any(openid_configuration,openid_sandbox_configuration):doc>",
            endpoint="openid",
            methods=["GET"],
        ),
        Rule(
            "/.well-known/<any(openid_configuration,openid_sandbox_configuration):doc>/",
            endpoint="openid",
            methods=["GET"],
        ),
        Rule(openid.JWKS_PATH, endpoint="jwks", methods=["GET"]),
        Rule(openid.USERINFO_PATH, endpoint="userinfo", methods=["GET", "POST"]),
        Rule("/v3/company/<realm>/<path:rest>", endpoint="api", methods=["GET", "POST"]),
        Rule("/_sandbox/config", endpoint="admin_config", methods=["GET", "POST"]),
        Rule("/_sandbox/stats", endpoint="admin_stats", methods=["GET"]),
        Rule("/_sandbox/realms", endpoint="admin_realms", methods=["GET", "POST"]),
        Rule("/_sandbox/clock", endpoint="admin_clock", methods=["GET", "POST"]),
        Rule("/_sandbox/simulate", endpoint="admin_simulate", methods=["POST"]),
        Rule("/_sandbox/incident", endpoint="admin_incident", methods=["POST"]),
        Rule("/_sandbox/files/<realm>/<record_id>", endpoint="admin_file", methods=["GET"]),
    ]
)


class SandboxApp:
    """The WSGI application over one store."""

    def __init__(
        self,
        store: SandboxStore,
        oauth: OAuthService,
        realism: Realism,
        *,
        auto_consent: bool = True,
    ) -> None:
        """Wire the parts together."""
        self.store = store
        self.oauth = oauth
        self.realism = realism
        self.auto_consent = auto_consent
        self.engine = QueryEngine(store)
        self.file_secret = secrets.token_bytes(32)
        self._replay_locks: dict[tuple[str, str], threading.Lock] = {}
        self._replay_guard = threading.Lock()

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request."""
        request = Request(environ)
        request.max_content_length = attachments.MAX_UPLOAD_BYTES + 1024 * 1024
        tid = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
        try:
            response = self._dispatch(request, environ)
        except HTTPException as exc:
            response = self._json(
                {"error": exc.name, "error_description": exc.description or ""},
                status=exc.code or 400,
            )
        if isinstance(response, Response):
            response.headers["intuit_tid"] = tid
            return response(environ, start_response)
        return response(environ, start_response, tid)

    def _dispatch(self, request: Request, environ: dict[str, Any]) -> Any:
        adapter = _URLS.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            if request.path.startswith("/v3/"):
                fault = faults.unsupported_operation(self._unsupported(request))
                return self._wire(request, self._fault(fault))
            raise
        return getattr(self, f"_on_{endpoint}")(request, **args)

    # --- responses --------------------------------------------------------------------------

    def _operations(self, realm: str) -> Operations:
        """The write rules for an API request, made as the user behind the access token.

        A company has one sandbox user (the grant's, :func:`openid.user_id`), whom QBO names in
        ``MetaData.LastModifiedByRef``; the sandbox's own writes carry ``openid.APP_USER_ID``.
        """
        return Operations(self.store, realm, user_id=openid.user_id(realm))

    def _now(self, realm_id: str | None = None) -> datetime:
        if realm_id and self.store.has_realm(realm_id):
            return self.store.now(realm_id)
        return datetime.now().astimezone()

    def _json(self, body: Any, status: int = 200, content_type: str = JSON_TYPE) -> Response:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return Response(data, status=status, content_type=content_type)

    def _envelope(self, realm_id: str, body: dict[str, Any]) -> Response:
        body["time"] = qbo_time(self._now(realm_id), millis=True)
        return self._json(body)

    def _fault(self, fault: SandboxFault, realm_id: str | None = None) -> Response:
        return self._json(fault.body(self._now(realm_id)), status=fault.status)

    def _unsupported(self, request: Request) -> str:
        return (
            f"Operation Could not find resource for relative : {request.path} of full path: "
            f"{request.base_url} is not supported."
        )

    # --- OAuth ------------------------------------------------------------------------------

    def _on_authorize(self, request: Request) -> Response:
        params = request.values
        client_id = params.get("client_id")
        redirect_uri = params.get("redirect_uri")
        state = params.get("state", "")
        try:
            self.oauth.check_client_id(client_id)
        except OAuthError as exc:
            return self._html_error(exc.description)
        if not redirect_uri:
            return self._html_error("redirect_uri is missing")
        if params.get("response_type", "code") != "code":
            return self._redirect(
                redirect_uri, {"error": "unsupported_response_type", "state": state}
            )
        realms = self.store.realm_ids()
        hint = params.get("realmId") or params.get("realm_id")
        if hint and hint not in realms:
            return self._html_error(f"realmId {hint} is not a company of this sandbox")
        if not realms:
            return self._html_error("the sandbox holds no company yet")
        consent = params.get("consent")
        if not self.auto_consent and request.method == "GET":
            return self._consent_page(params, realms, hint)
        if consent == "deny":
            return self._redirect(redirect_uri, {"error": "access_denied", "state": state})
        realm = hint or realms[0]
        code = self.oauth.issue_code(realm, str(client_id), redirect_uri, params.get("scope"))
        return self._redirect(redirect_uri, {"code": code, "state": state, "realmId": realm})

    def _redirect(self, redirect_uri: str, params: dict[str, str]) -> Response:
        sep = "&" if "?" in redirect_uri else "?"
        response = Response("", status=302)
        response.headers["Location"] = f"{redirect_uri}{sep}{urlencode(params)}"
        return response

    def _html_error(self, message: str) -> Response:
        body = f"<!doctype html><title>Sandbox sign-in</title><p>{html.escape(message)}</p>"
        return Response(body, status=400, content_type="text/html; charset=utf-8")

    def _consent_page(self, params: Any, realms: list[str], hint: str | None) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k not in ("realmId", "consent")
        )
        options = "".join(
            f'<option value="{r}"{" selected" if r == hint else ""}>'
            f"{html.escape(self.store.company_name(r))} ({r})</option>"
            for r in realms
        )
        body = (
            "<!doctype html><title>Connect to the QBO sandbox</title>"
            "<h1>Connect your app to a sandbox company</h1>"
            f'<form method="post" action="/connect/oauth2">{hidden}'
            f'<label>Company <select name="realmId">{options}</select></label> '
            '<button name="consent" value="allow">Connect</button> '
            '<button name="consent" value="deny">Cancel</button></form>'
        )
        return Response(body, content_type="text/html; charset=utf-8")

    def _on_token(self, request: Request) -> Response:
        form = {k: v for k, v in request.form.items()}
        try:
            body = self.oauth.token(
                form,
                request.headers.get("Authorization"),
                issuer=openid.issuer(request.host_url),
                include_hard_expiry=request.headers.get(HARD_EXPIRY_HEADER, "").lower() == "true",
            )
        except OAuthError as exc:
            return self._json(exc.body(), status=exc.status, content_type="application/json")
        response = self._json(body, content_type="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    def _on_revoke(self, request: Request) -> Response:
        form = {k: v for k, v in request.form.items()}
        token = form.get("token")
        if not token and request.is_json:
            payload = request.get_json(silent=True) or {}
            token = payload.get("token") if isinstance(payload, dict) else None
        try:
            self.oauth.revoke(token or "", request.headers.get("Authorization"), form)
        except OAuthError as exc:
            return self._json(exc.body(), status=exc.status, content_type="application/json")
        return Response("", status=200)

    def _on_openid(self, request: Request, doc: str) -> Response:
        return self._json(openid.discovery(request.host_url), content_type="application/json")

    def _on_jwks(self, request: Request) -> Response:
        return self._json(self.oauth.signing_key.jwks(), content_type="application/json")

    def _on_userinfo(self, request: Request) -> Response:
        try:
            realm, granted = self.oauth.grant_of(request.headers.get("Authorization"))
        except AccessDenied as exc:
            response = self._json(
                {"error": "invalid_token", "error_description": str(exc)},
                status=401,
                content_type="application/json",
            )
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        if "openid" not in granted:
            response = self._json(
                {"error": "insufficient_scope", "error_description": "the openid scope is needed"},
                status=403,
                content_type="application/json",
            )
            response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
            return response
        return self._json(
            openid.userinfo(self.store, realm, granted), content_type="application/json"
        )

    # --- the API ----------------------------------------------------------------------------

    def _on_api(self, request: Request, realm: str, rest: str) -> Any:
        try:
            token = self.oauth.check_access(request.headers.get("Authorization"), realm)
        except WrongRealm:
            return self._wire(request, self._fault(faults.application_authorization_failed(realm)))
        except AccessDenied as exc:
            body = faults.authentication_body(self._now(), str(exc))
            return self._wire(request, self._json(body, status=401))
        url = request.full_path
        batch = rest.strip("/").lower() == "batch"
        with self.realism.request(realm, url, batch=batch) as decision:
            if decision.throttle:
                return self._throttled(realm)
            if decision.fault is not None:
                injected = self._inject(decision.fault, realm, token, request)
                if injected is not None:
                    return injected
            try:
                response = self._api(request, realm, rest)
            except SandboxFault as fault:
                response = self._fault(fault, realm)
            response = self._wire(request, response)
            if decision.fault is not None and decision.fault.kind == "truncate":
                return _Truncated(response)
            return response

    def _wire(self, request: Request, response: Response) -> Response:
        """The answer in QBO's XML unless the request asked for JSON (QBO's default is XML)."""
        if response.mimetype != "application/json" or not xml_wire.wants_xml(
            request.headers.get("Accept")
        ):
            return response
        body = xml_wire.to_xml(orjson.loads(response.get_data()))
        return Response(body, status=response.status_code, content_type=xml_wire.XML_TYPE)

    def _throttled(self, realm: str) -> Response:
        response = Response(
            faults.throttle_xml(self._now(realm)), status=429, content_type=XML_TYPE
        )
        response.headers["Retry-After"] = str(self.realism.config.retry_after)
        return response

    def _inject(self, rule: FaultRule, realm: str, token: str, request: Request) -> Any | None:
        now = self._now(realm)
        if rule.kind == "429":
            return self._throttled(realm)
        if rule.kind in ("500", "503"):
            status = int(rule.kind)
            if rule.format == "json":
                fault = faults.system_fault()
                return self._json(fault.body(now), status=status)
            return Response(faults.system_fault_xml(now), status=status, content_type=XML_TYPE)
        if rule.kind == "reset":
            return _Reset()
        if rule.kind == "slow":
            self.realism.sleep(rule.seconds)
            return None
        if rule.kind == "hold":
            self.realism.hold(rule.seconds)
            return None
        if rule.kind == "revoked":
            self.oauth.revoke_token(token)
            return self._json(faults.authentication_body(now, "Token revoked"), status=401)
        return None

    def _api(self, request: Request, realm: str, rest: str) -> Response:
        if not self.store.has_realm(realm):
            raise faults.application_authorization_failed(realm)
        minor = request.args.get("minorversion")
        if minor is not None and not (minor.isascii() and minor.isdigit()):
            raise faults.unsupported_property(
                f"Property Name:minorversion={minor} specified is unsupported or invalid"
                " (a whole number such as 75)"
            )
        parts = [p for p in rest.split("/") if p]
        head = parts[0].lower() if parts else ""
        method = request.method
        if head == "query" and len(parts) == 1:
            return self._query(request, realm)
        if head == "cdc" and len(parts) == 1 and method == "GET":
            body = change_data_capture(
                self.store, realm, request.args.get("entities"), request.args.get("changedSince")
            )
            return self._envelope(realm, body)
        if head == "batch" and len(parts) == 1 and method == "POST":
            return self._idempotent(
                request,
                realm,
                lambda: self._envelope(
                    realm,
                    run_batch(self._operations(realm), self.engine, self._body(request)),
                ),
            )
        if (
            head == "taxservice"
            and len(parts) == 2
            and parts[1].lower() == "taxcode"
            and method == "POST"
        ):
            # Not an entity resource: its answer is the TaxService object itself, unwrapped.
            return self._idempotent(
                request,
                realm,
                lambda: self._json(
                    tax_service.create_tax_code(self._operations(realm), self._body(request))
                ),
            )
        if head == "reports" and len(parts) == 2 and method == "GET":
            return self._report(request, realm, parts[1])
        if head == "upload" and len(parts) == 1 and method == "POST":
            return self._idempotent(request, realm, lambda: self._upload(request, realm))
        if head == "download" and len(parts) == 2 and method == "GET":
            return self._download(request, realm, parts[1])
        if head == "companyinfo":
            return self._singleton(request, realm, "CompanyInfo", parts[1:])
        if head == "preferences":
            return self._singleton(request, realm, "Preferences", parts[1:])
        try:
            ent = entities.get(head)
        except entities.UnknownEntityError:
            raise faults.unsupported_operation(self._unsupported(request)) from None
        if ent.resource != head or ent.is_singleton:
            raise faults.unsupported_operation(self._unsupported(request))
        if method == "GET" and len(parts) == 2:
            return self._read(realm, ent, parts[1])
        if method == "GET" and len(parts) == 3 and parts[2].lower() == "pdf":
            return self._pdf(request, realm, ent, parts[1])
        if method == "POST" and len(parts) == 3 and parts[2].lower() == "send":
            return self._idempotent(
                request, realm, lambda: self._send(request, realm, ent, parts[1])
            )
        if method == "GET" and len(parts) == 1 and ent.name == shapes.EXCHANGE_RATE:
            return self._read_rate(request, realm, ent)
        if method == "POST" and len(parts) == 1:
            return self._idempotent(request, realm, lambda: self._write(request, realm, ent))
        raise faults.unsupported_operation(self._unsupported(request))

    def _body(self, request: Request) -> Any:
        data = request.get_data(cache=True)
        if len(data) > MAX_JSON_BODY:
            raise faults.request_error(f"The request body is larger than {MAX_JSON_BODY} bytes.")
        if not data.strip():
            raise faults.request_error("The request body is empty; send a JSON object.")
        if request.mimetype in ("application/xml", "text/xml"):
            try:
                return xml_wire.from_xml(data)
            except xml_wire.XMLBodyError as exc:
                raise faults.request_error(f"The request body is not valid XML: {exc}") from None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise faults.request_error(f"The request body is not valid JSON: {exc}") from None

    def _query(self, request: Request, realm: str) -> Response:
        if request.method == "POST":
            text = request.get_data(as_text=True)
        else:
            text = request.args.get("query", "")
        result = self.engine.run_text(realm, text)
        time_text = qbo_time(self._now(realm), millis=True)
        body = (
            b'{"QueryResponse":'
            + result.query_response_json()
            + b',"time":'
            + orjson.dumps(time_text)
            + b"}"
        )
        return self._json(body)

    def _read(self, realm: str, ent: entities.Entity, record_id: str) -> Response:
        try:
            shapes.store_key(ent.name, record_id)
        except ValueError:
            raise faults.invalid_id(record_id) from None
        record = self.store.get(realm, ent.name, record_id)
        if record is None:
            raise faults.not_found()
        return self._envelope(realm, {ent.json_key: record})

    def _pdf(self, request: Request, realm: str, ent: entities.Entity, record_id: str) -> Response:
        """``GET /invoice/<id>/pdf`` (and the other printable forms): the form as a PDF."""
        if not ent.printable:
            raise faults.unsupported_operation(self._unsupported(request))
        try:
            shapes.store_key(ent.name, record_id)
        except ValueError:
            raise faults.invalid_id(record_id) from None
        record = self.store.get(realm, ent.name, record_id)
        if record is None:
            raise faults.not_found()
        content = pdf.render_form(ent.name, record, self.store.company_name(realm))
        return Response(content, content_type=pdf.PDF_TYPE)

    def _send(self, request: Request, realm: str, ent: entities.Entity, record_id: str) -> Response:
        """``POST /invoice/<id>/send[?sendTo=a@b.c]``: mark the form e-mailed, as QBO does.

        ``EmailStatus`` becomes ``EmailSent`` and ``DeliveryInfo`` records the time; ``sendTo``
        replaces ``BillEmail`` (``POEmail`` on a purchase order). Nothing is really sent.
        """
        if not ent.printable:
            raise faults.unsupported_operation(self._unsupported(request))
        try:
            shapes.store_key(ent.name, record_id)
        except ValueError:
            raise faults.invalid_id(record_id) from None
        record = self.store.get(realm, ent.name, record_id)
        if record is None:
            raise faults.not_found()
        email_field = "POEmail" if ent.name == "PurchaseOrder" else "BillEmail"
        send_to = (request.args.get("sendTo") or "").strip()
        if send_to and ("@" not in send_to or any(c.isspace() for c in send_to)):
            raise faults.request_error(f"sendTo {send_to!r} is not an e-mail address.")
        if not send_to and not (record.get(email_field) or {}).get("Address"):
            raise faults.business_validation(
                f"The {ent.name} has no {email_field} address; pass sendTo=<address>."
            )
        change: dict[str, Any] = {
            "Id": record["Id"],
            "SyncToken": record["SyncToken"],
            "sparse": True,
            "EmailStatus": "EmailSent",
            "DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": qbo_time(self._now(realm))},
        }
        if send_to:
            change[email_field] = {"Address": send_to}
        result = self._operations(realm).save(ent.name, change)
        return self._envelope(realm, {ent.json_key: result})

    def _read_rate(self, request: Request, realm: str, ent: entities.Entity) -> Response:
        """``GET /exchangerate?sourcecurrencycode=EUR[&asofdate=2015-07-07]``, as QBO reads one.

        The rate in force on the date (the latest on or before it; today in company time when
        no date is given).
        """
        args = {k.lower(): v for k, v in request.args.items()}
        code = (args.get("sourcecurrencycode") or "").strip()
        if not code:
            raise faults.required_missing("sourcecurrencycode")
        as_of = (args.get("asofdate") or "").strip()
        if not as_of:
            as_of = self._now(realm).astimezone(COMPANY_TZ).date().isoformat()
        try:
            date.fromisoformat(as_of)
        except ValueError:
            raise faults.request_error(f"asofdate {as_of!r} is not a date (YYYY-MM-DD).") from None
        rows = self.store.select(
            "WHERE realm = ? AND entity = ? AND json_extract(payload, '$.SourceCurrencyCode') = ?"
            " AND json_extract(payload, '$.AsOfDate') <= ?"
            " ORDER BY json_extract(payload, '$.AsOfDate') DESC LIMIT 1",
            (realm, ent.name, code, as_of),
            columns="payload",
        )
        if not rows:
            raise faults.not_found(f"Object Not Found : no exchange rate for {code} on {as_of}")
        return self._envelope(realm, {ent.json_key: orjson.loads(rows[0][0])})

    def _write(self, request: Request, realm: str, ent: entities.Entity) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise faults.request_error(f"The {ent.name} body must be a JSON object.")
        ops = self._operations(realm)
        operation = (request.args.get("operation") or "").lower()
        include = (request.args.get("include") or "").lower()
        if operation == "delete":
            result = ops.delete(ent.name, body.get("Id"), body.get("SyncToken"))
        elif operation == "void" or (operation == "update" and include == "void"):
            result = ops.void(ent.name, body.get("Id"), body.get("SyncToken"))
        elif operation not in ("", "update", "create"):
            raise faults.unsupported_operation(
                f"Operation {operation} is not supported for {ent.name}."
            )
        else:
            result = ops.save(ent.name, body)
        return self._envelope(realm, {ent.json_key: result})

    def _singleton(self, request: Request, realm: str, name: str, rest: list[str]) -> Response:
        ent = entities.get(name)
        if request.method == "POST" and not rest:
            body = self._body(request)
            ops = self._operations(realm)
            return self._idempotent(
                request,
                realm,
                lambda: self._envelope(realm, {ent.json_key: ops.update_singleton(name, body)}),
            )
        if request.method == "GET" and (
            (name == "CompanyInfo" and rest in ([realm], []))
            or (name == "Preferences" and not rest)
        ):
            record = next(iter(self.store.iter_records(realm, name)), None)
            if record is None:
                raise faults.not_found(f"Object Not Found : {name} of company {realm}")
            return self._envelope(realm, {ent.json_key: record})
        raise faults.unsupported_operation(self._unsupported(request))

    def _report(self, request: Request, realm: str, name: str) -> Response:
        params = {k: v for k, v in request.args.items() if k != "minorversion"}
        report = reports.build_report(self.store, realm, name, params)
        return self._json(report)

    def _upload(self, request: Request, realm: str) -> Response:
        parts: dict[str, tuple[bytes, str | None, str | None]] = {}
        for name, storage in request.files.items():
            parts[name] = (storage.read(), storage.filename, storage.mimetype or None)
        for name, value in request.form.items():
            parts.setdefault(name, (value.encode(), None, "application/json"))
        body = attachments.upload(
            self._operations(realm),
            parts,
            base_url=request.host_url,
            secret=self.file_secret,
        )
        return self._envelope(realm, body)

    def _download(self, request: Request, realm: str, record_id: str) -> Response:
        if not record_id.isdigit():
            raise faults.invalid_id(record_id)
        if self.store.get(realm, "Attachable", record_id) is None:
            raise faults.not_found()
        url = attachments.download_url(request.host_url, self.file_secret, realm, record_id)
        return Response(url, content_type="text/plain")

    # --- requestid idempotency --------------------------------------------------------------

    def _idempotent(
        self, request: Request, realm: str, handler: Callable[[], Response]
    ) -> Response:
        request_id = request.args.get("requestid")
        if not request_id:
            return self._run_write(handler, realm)
        if len(request_id) > MAX_REQUEST_ID:
            raise faults.request_error(
                f"requestid is {len(request_id)} characters long; at most {MAX_REQUEST_ID}."
            )
        key = (realm, request_id)
        with self._replay_guard:
            lock = self._replay_locks.setdefault(key, threading.Lock())
        with lock:
            replay = self.store.replay_get(realm, request_id)
            if replay is not None:
                _, status, content_type, body = replay
                return Response(body, status=status, content_type=content_type)
            response = self._run_write(handler, realm)
            fingerprint = hashlib.sha256(
                request.method.encode() + request.path.encode() + request.get_data()
            ).hexdigest()
            self.store.replay_put(
                realm,
                request_id,
                fingerprint,
                response.status_code,
                response.content_type or JSON_TYPE,
                response.get_data(),
            )
        with self._replay_guard:
            self._replay_locks.pop(key, None)
        return response

    def _run_write(self, handler: Callable[[], Response], realm: str) -> Response:
        try:
            return handler()
        except SandboxFault as fault:
            return self._fault(fault, realm)

    # --- admin (not QBO) --------------------------------------------------------------------

    def _admin_body(self, request: Request) -> dict[str, Any]:
        data = request.get_data()
        if not data.strip():
            return {}
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _AdminError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _AdminError("the body must be a JSON object")
        return body

    def _admin(self, action: Callable[[], Any]) -> Response:
        try:
            return self._json(action(), content_type="application/json")
        except (_AdminError, ValueError, TypeError, KeyError, UnknownRealmError) as exc:
            return self._json({"error": str(exc)}, status=400, content_type="application/json")
        except SandboxFault as fault:
            return self._json({"error": str(fault)}, status=400, content_type="application/json")

    def _on_admin_config(self, request: Request) -> Response:
        if request.method == "GET":
            return self._admin(lambda: self.realism.config.to_dict())
        return self._admin(lambda: self.realism.configure(**self._admin_body(request)).to_dict())

    def _on_admin_stats(self, request: Request) -> Response:
        return self._admin(self.realism.stats)

    def _on_admin_realms(self, request: Request) -> Response:
        if request.method == "POST":
            return self._admin(lambda: _create_realm(self.store, self._admin_body(request)))
        return self._admin(
            lambda: [
                {
                    "realmId": r,
                    "companyName": self.store.company_name(r),
                    "now": qbo_time(self.store.now(r)),
                }
                for r in self.store.realm_ids()
            ]
        )

    def _realm_param(self, body: dict[str, Any]) -> str:
        realm = body.get("realmId") or next(iter(self.store.realm_ids()), None)
        if realm is None or not self.store.has_realm(str(realm)):
            raise _AdminError(f"unknown realmId {realm!r}")
        return str(realm)

    def _on_admin_clock(self, request: Request) -> Response:
        def action() -> dict[str, Any]:
            body = self._admin_body(request) if request.method == "POST" else dict(request.args)
            realm = self._realm_param(body)
            if body.get("mode", "real") not in ("fixed", "real"):
                raise _AdminError(f"mode must be 'fixed' or 'real', not {body['mode']!r}")
            if "advance_days" in body or "advance_seconds" in body:
                delta = timedelta(
                    days=float(body.get("advance_days", 0)),
                    seconds=float(body.get("advance_seconds", 0)),
                )
                self.store.advance_clock(realm, delta)
            elif "set" in body:
                when = datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00"))
                self.store.set_clock(realm, when)
            if body.get("mode") == "fixed":
                self.store.fix_clock(realm)
            elif body.get("mode") == "real":
                self.store.follow_real_clock(realm)
            return {
                "realmId": realm,
                "now": qbo_time(self.store.now(realm)),
                "mode": self.store.clock_mode(realm),
            }

        return self._admin(action)

    def _on_admin_simulate(self, request: Request) -> Response:
        def action() -> dict[str, Any]:
            body = self._admin_body(request)
            realm = self._realm_param(body)
            days = int(body.get("days", 1))
            if days < 1:
                raise _AdminError("days must be at least 1")
            kwargs = {k: body[k] for k in ("seed", "changes_per_day") if k in body}
            log = simulate.simulate_days(self.store, realm, days, **kwargs)
            return {"realmId": realm, "days": days, "changes": _counts(log)}

        return self._admin(action)

    def _on_admin_incident(self, request: Request) -> Response:
        def action() -> dict[str, Any]:
            body = self._admin_body(request)
            realm = self._realm_param(body)
            kind = str(body.get("kind", ""))
            params = dict(body.get("params") or {})
            log = run_incident(self.store, realm, kind, params)
            return {"realmId": realm, "kind": kind, "changes": _counts(log)}

        return self._admin(action)

    def _on_admin_file(self, request: Request, realm: str, record_id: str) -> Response:
        expected = attachments.sign(self.file_secret, realm, record_id)
        given = request.args.get("signature", "")
        if not secrets.compare_digest(expected, given):
            return Response("signature does not match", status=403, content_type="text/plain")
        blob = self.store.get_blob(realm, record_id)
        if blob is None:
            return Response("no such file", status=404, content_type="text/plain")
        content_type, content = blob
        return Response(content, content_type=content_type)


class _AdminError(ValueError):
    """A bad admin request; the message says what was wrong."""


def _create_realm(store: SandboxStore, body: dict[str, Any]) -> dict[str, Any]:
    """``POST /_sandbox/realms {"kind": "new", "country": "US", "multicurrency": false}``."""
    if body.get("kind", "new") != "new":
        raise _AdminError(f"kind must be 'new' (a company as QBO creates it), not {body['kind']!r}")
    unknown = set(body) - {"kind", "country", "multicurrency", "realmId", "companyName"}
    if unknown:
        raise _AdminError(f"unknown fields {', '.join(sorted(unknown))}")
    company = new_company.create_new_company(
        store,
        country=str(body.get("country", "US")),
        multicurrency=body.get("multicurrency", False),
        realm_id=None if body.get("realmId") is None else str(body["realmId"]),
        company_name=body.get("companyName"),
    )
    return company.to_dict()


_INCIDENT_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "bulk_delete_invoices": incidents.bulk_delete_invoices,
    "bad_import_customers": incidents.bad_import_customers,
    "deactivate_item": incidents.deactivate_item,
}

INCIDENTS = tuple(_INCIDENT_FUNCTIONS)
"""The incidents the sandbox can stage (:mod:`qbo_pipeline.sandbox.incidents`)."""


def run_incident(store: SandboxStore, realm: str, kind: str, params: dict[str, Any]) -> Any:
    """Stage an incident (:mod:`qbo_pipeline.sandbox.incidents`), converting date parameters.

    Raises:
        ValueError: If the kind is unknown or a parameter unusable.
    """
    if kind not in INCIDENTS:
        raise ValueError(f"incident kind {kind!r} is not one of {', '.join(INCIDENTS)}")
    if kind == "bulk_delete_invoices":
        for key in ("start", "end"):
            if key in params and isinstance(params[key], str):
                try:
                    params[key] = date.fromisoformat(params[key])
                except ValueError:
                    raise ValueError(
                        f"incident parameter {key}={params[key]!r} is not a date (YYYY-MM-DD)"
                    ) from None
    try:
        return _INCIDENT_FUNCTIONS[kind](store, realm, **params)
    except TypeError as exc:
        raise ValueError(f"incident {kind}: {exc}") from None


def _counts(log: Any) -> dict[str, int]:
    counts = log.counts() if hasattr(log, "counts") else {}
    return {f"{entity}.{action}": n for (entity, action), n in counts.items()}


# --- responses that misbehave on purpose ---------------------------------------------------


class _Reset:
    """Close the connection without answering (an RST where the platform allows)."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any], tid: str
    ) -> Iterable[bytes]:
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        raise ConnectionResetError("sandbox: injected connection reset")


class _Truncated:
    """Send the headers of a whole response but only half its body, then close."""

    def __init__(self, response: Response) -> None:
        self.response = response

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any], tid: str
    ) -> Iterable[bytes]:
        body = self.response.get_data()
        headers = Headers(self.response.headers)
        headers["Content-Length"] = str(len(body))
        headers["intuit_tid"] = tid
        start_response(self.response.status, list(headers.items()))
        return self._half(environ, body)

    @staticmethod
    def _half(environ: dict[str, Any], body: bytes) -> Iterator[bytes]:
        yield body[: max(1, len(body) // 2)]
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
