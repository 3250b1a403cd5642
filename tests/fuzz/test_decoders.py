"""The OTLP decoders under hostile input: InvalidRequestError or a success that
keeps the spans, never another exception. A bounded, derandomised run; the long
run is ``benchmarks/fuzz.py`` (result in benchmarks/results/fuzz.md)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from otlp_fuzz import check_decoder, json_bodies, protobuf_bodies, requests, spans_of

from forktrace.collector.otlp import accept_protobuf

BOUNDED = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@BOUNDED
@given(protobuf_bodies)
def test_protobuf_decoder_rejects_cleanly_or_keeps_the_spans(body: bytes) -> None:
    check_decoder(body, json_body=False)


@BOUNDED
@given(json_bodies)
def test_json_decoder_rejects_cleanly_or_keeps_the_spans(body: bytes) -> None:
    check_decoder(body, json_body=True)


@BOUNDED
@given(requests())
def test_well_formed_spans_are_all_kept(request) -> None:  # type: ignore[no-untyped-def]
    """Spans with valid ids and small attributes are never dropped."""
    for span in spans_of(request):
        span.trace_id = b"\x01" * 16
        span.span_id = b"\x02" * 8
        span.parent_span_id = b""
    accepted = accept_protobuf(request.SerializeToString())
    assert accepted.rejected_spans == 0, accepted.error_message
    assert accepted.spans == len(spans_of(request))


def test_a_key_with_a_lone_surrogate_is_a_clean_rejection() -> None:
    """Found by benchmarks/fuzz.py: upb raised SystemError (an HTTP 500) on such a key."""
    for body in (b'{"\\udaf9x": 1}', b'{"resourceSpans": [{"\\udaf9": 1}]}'):
        assert check_decoder(body, json_body=True) == "rejected"
