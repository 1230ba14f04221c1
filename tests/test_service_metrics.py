"""`GET /metrics`: Prometheus text that counts what a client did, through a real server."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.settings import Settings
from tests.conftest import serving


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_requests_by_route_and_status_and_report_the_lane_and_index(seed_settings: Settings, retriever) -> None:
    with serving(seed_settings.model_copy(update={"cache_size": 0}), retriever) as url:
        for question in ("Who is Chen Wenqing?", "What is ETIM?", "Who is Chen Wenqing?"):
            assert httpx.post(url + "/query", json={"question": question}).status_code == 200
        assert httpx.post(url + "/query", json={"question": ""}).status_code == 422
        assert httpx.get(url + "/no/such/path").status_code == 404
        reply = httpx.get(url + "/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    got = samples(reply.text)
    assert got[("cited_http_requests_total", (("method", "POST"), ("route", "/query"), ("status", "200")))] == 3
    assert got[("cited_http_requests_total", (("method", "POST"), ("route", "/query"), ("status", "422")))] == 1
    assert got[("cited_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1  # no label per path
    assert got[("cited_http_request_duration_seconds_count", (("method", "POST"), ("route", "/query")))] == 4
    assert got[("cited_lane_batch_size_count", ())] >= 1 and got[("cited_lane_batch_size_sum", ())] == 3
    assert got[("cited_query_stage_seconds_count", (("stage", "encode"),))] == got[("cited_lane_batch_size_count", ())]
    assert got[("cited_query_stage_seconds_sum", (("stage", "search"),))] > 0
    assert got[("cited_index_passages", ())] == len(retriever.passages) and got[("cited_index_documents", ())] == 5
    assert got[("cited_lane_queue_depth", ())] == 0 and got[("cited_lane_questions", ())] == 3 and got[("cited_index_stale", ())] == 0
