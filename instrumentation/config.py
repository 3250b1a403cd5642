"""forktrace's configuration: explicit argument, then environment, then default.

Every setting records where its value came from, so ``forktrace doctor`` can
show it. Validation collects every problem and raises them together in one
:class:`ConfigError`, so a user fixes their configuration in one pass.

This module imports nothing beyond the standard library: ``forktrace doctor``
and ``import forktrace`` both read it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from forktrace.redaction import (
    DEFAULT_RULES,
    RedactionConfigError,
    RedactSpec,
    Rules,
    resolve_rules,
)
from forktrace.semconv import TRUNCATION_MARKER

T = TypeVar("T")

PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_PORTS = {"grpc": 4317, "http/protobuf": 4318}
DEFAULT_SERVICE_NAME = "unknown_service"
DEFAULT_MAX_TEXT_LENGTH = 16_384
DEFAULT_EXPORT_TIMEOUT = 3.0  # seconds; short, so a dead collector never holds up exit
HTTP_TRACES_PATH = "/v1/traces"

# One id per process: runs started by one process without an explicit session
# still group together, which is what "launched together" means most often.
PROCESS_SESSION_ID = uuid.uuid4().hex

ARGUMENT = "argument"
DEFAULT = "default"


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid forktrace configuration ({len(problems)} problems):\n{listing}")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """A resolved value and where it came from: ``argument``, ``default`` or ``env NAME``."""

    value: T
    source: str


@dataclass(frozen=True)
class Config:
    service_name: Setting[str]
    endpoint: Setting[str]
    protocol: Setting[str]
    headers: Setting[dict[str, str]]
    session: Setting[str]
    capture_content: Setting[bool]
    max_text_length: Setting[int]
    export_timeout: Setting[float]
    redact: Setting[Rules]

    @property
    def insecure(self) -> bool:
        """Plain-text transport, chosen by the endpoint's scheme as OTLP specifies."""
        return urlsplit(self.endpoint.value).scheme != "https"

    def settings(self) -> dict[str, Setting[Any]]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def resolve(
    *,
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    session: str | None = None,
    capture_content: bool | None = None,
    max_text_length: int | None = None,
    export_timeout: float | None = None,
    redact: RedactSpec = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Resolve every setting and validate them all; raise :class:`ConfigError` listing each problem."""
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def pick(
        argument: Any,
        env_names: tuple[str, ...],
        parse: Callable[[str], Any],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
    ) -> Setting[Any]:
        if argument is not None:
            setting = Setting(argument, ARGUMENT)
        else:
            setting = Setting(default, DEFAULT)
            for name in env_names:
                raw = env.get(name, "").strip()
                if raw:
                    try:
                        setting = Setting(parse(raw), f"env {name}")
                    except ValueError as exc:
                        problems.append(f"{name}={raw!r}: {exc}")
                    break
        if check is not None and setting.source != DEFAULT:
            problem = check(setting.value)
            if problem:
                problems.append(f"{_describe(setting)}: {problem}")
        return setting

    resolved_protocol = pick(
        protocol,
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        str,
        "grpc",
        lambda value: None if value in PROTOCOLS else f"protocol must be one of {PROTOCOLS}",
    )
    valid_protocol = resolved_protocol.value if resolved_protocol.value in PROTOCOLS else "grpc"
    resolved_endpoint = _resolve_endpoint(endpoint, valid_protocol, env, problems)

    config = Config(
        service_name=pick(
            service_name,
            ("OTEL_SERVICE_NAME",),
            str,
            DEFAULT_SERVICE_NAME,
            lambda value: (
                None if isinstance(value, str) and value else "must be a non-empty string"
            ),
        ),
        endpoint=resolved_endpoint,
        protocol=resolved_protocol,
        headers=pick(
            _headers_argument(headers, problems),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
            parse_headers,
            {},
        ),
        session=pick(
            session,
            ("FORKTRACE_SESSION",),
            str,
            PROCESS_SESSION_ID,
            lambda value: (
                None if isinstance(value, str) and value else "must be a non-empty string"
            ),
        ),
        capture_content=pick(
            capture_content,
            ("FORKTRACE_CAPTURE_CONTENT",),
            parse_bool,
            True,
            lambda value: None if isinstance(value, bool) else "must be true or false",
        ),
        max_text_length=pick(
            max_text_length,
            ("FORKTRACE_MAX_TEXT_LENGTH",),
            int,
            DEFAULT_MAX_TEXT_LENGTH,
            _check_max_text_length,
        ),
        export_timeout=pick(
            export_timeout,
            ("FORKTRACE_EXPORT_TIMEOUT",),
            float,
            DEFAULT_EXPORT_TIMEOUT,
            lambda value: (
                None
                if isinstance(value, int | float) and not isinstance(value, bool) and value > 0
                else "must be a number of seconds above 0"
            ),
        ),
        redact=_resolve_redact(redact, env, problems),
    )
    config = _with_collector_token(config, env)
    problems.extend(_resource_attribute_problems(env))
    if problems:
        raise ConfigError(problems)
    return config


def _with_collector_token(config: Config, env: Mapping[str, str]) -> Config:
    """Send the collector's write token (``FORKTRACE_WRITE_TOKEN``, else
    ``FORKTRACE_TOKEN``) as a bearer token, unless the headers already carry an
    ``authorization`` header: the same variables ``forktrace up`` reads, so one
    environment serves both sides."""
    if "authorization" in config.headers.value:
        return config
    for name in ("FORKTRACE_WRITE_TOKEN", "FORKTRACE_TOKEN"):
        token = env.get(name, "").strip()
        if token:
            headers = {**config.headers.value, "authorization": f"Bearer {token}"}
            return replace(config, headers=Setting(headers, f"env {name}"))
    return config


def _resolve_redact(
    argument: RedactSpec, env: Mapping[str, str], problems: list[str]
) -> Setting[Rules]:
    """The redaction rules (format in :mod:`forktrace.redaction`); every bad entry is reported."""
    if argument is not None:
        spec, source = argument, ARGUMENT
    elif env.get("FORKTRACE_REDACT", "").strip():
        spec, source = env["FORKTRACE_REDACT"], "env FORKTRACE_REDACT"
    else:
        return Setting(DEFAULT_RULES, DEFAULT)
    try:
        return Setting(resolve_rules(spec), source)
    except RedactionConfigError as exc:
        problems.extend(f"redact ({source}): {problem}" for problem in exc.problems)
        return Setting(DEFAULT_RULES, DEFAULT)


def _describe(setting: Setting[Any]) -> str:
    return f"{setting.source} = {setting.value!r}"


def _check_max_text_length(value: Any) -> str | None:
    minimum = len(TRUNCATION_MARKER) + 1
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return f"must be an integer of at least {minimum} (the truncation marker's length + 1)"
    return None


def _resolve_endpoint(
    argument: str | None, protocol: str, env: Mapping[str, str], problems: list[str]
) -> Setting[str]:
    """The traces endpoint as a full URL.

    As OTLP specifies, a signal-specific endpoint (and an explicit argument) is
    used as given, while the generic ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets
    ``/v1/traces`` appended for HTTP.
    """
    generic = False
    if argument is not None:
        raw, source = argument, ARGUMENT
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        raw, source = (
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].strip(),
            "env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        )
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        raw, source = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip(), "env OTEL_EXPORTER_OTLP_ENDPOINT"
        generic = True
    else:
        return Setting(_default_endpoint(protocol), DEFAULT)

    if not isinstance(raw, str) or not raw:
        problems.append(f"endpoint ({source}): must be a non-empty URL string, got {raw!r}")
        return Setting(_default_endpoint(protocol), DEFAULT)
    url = raw if "://" in raw else f"http://{raw}"
    problem = _endpoint_problem(url)
    if problem:
        problems.append(f"endpoint ({source} = {raw!r}): {problem}")
        return Setting(url, source)
    if protocol == "http/protobuf":
        path = urlsplit(url).path
        if generic or path in ("", "/"):
            url = url.rstrip("/") + HTTP_TRACES_PATH
    return Setting(url, source)


def _default_endpoint(protocol: str) -> str:
    url = f"http://localhost:{DEFAULT_PORTS[protocol]}"
    return url + HTTP_TRACES_PATH if protocol == "http/protobuf" else url


def _endpoint_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "scheme must be http or https"
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    return None


def endpoint_address(url: str) -> tuple[str, int]:
    """Host and port of a validated endpoint URL; without a port, the scheme's (443 or 80)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_headers(raw: str) -> dict[str, str]:
    """Parse the OTLP headers format: ``key1=value1,key2=value2``, values URL-encoded."""
    headers: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"header {item.strip()!r} is not key=value")
        headers[unquote(key.strip()).lower()] = unquote(value.strip())
    return headers


def _headers_argument(
    headers: Mapping[str, str] | str | None, problems: list[str]
) -> dict[str, str] | None:
    if headers is None:
        return None
    if isinstance(headers, str):
        try:
            return parse_headers(headers)
        except ValueError as exc:
            problems.append(f"headers (argument): {exc}")
            return {}
    if isinstance(headers, Mapping) and all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        return {key.lower(): value for key, value in headers.items()}
    problems.append("headers (argument): must be a mapping of str to str or a 'k=v,k2=v2' string")
    return {}


def _resource_attribute_problems(env: Mapping[str, str]) -> list[str]:
    raw = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    try:
        parse_headers(raw)
    except ValueError as exc:
        return [f"OTEL_RESOURCE_ATTRIBUTES={raw!r}: {exc}"]
    return []
