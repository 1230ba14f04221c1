"""Schemathesis against the real server (uvicorn on loopback) and the real index of the seeds.

Every operation in the app's OpenAPI document, every phase the pytest integration runs (examples,
coverage, fuzzing) and every check schemathesis has: no 5xx, status codes, content types, bodies and
headers as documented, invalid data refused, valid data accepted, 405 with Allow for undeclared
methods. The default run is bounded: FUZZ_EXAMPLES fuzzed examples per operation (the coverage and
examples phases add their own), about 1,100 cases in 10 s on 2 cores. The slow one
(`pytest -m slow tests/test_schema_fuzz.py`) sends at least 5,000 cases (about 6,000, in 60 s) and
fails if it sent fewer. Each prints its count of cases and of statuses.

The schema is the app's own `openapi()` loaded with `from_dict` at import, because building it needs
no index; the requests go to the session's `live_server`. (`schemathesis.pytest.from_fixture` would
load it from a fixture, but it sets `Function._nodeid`, which pytest 9.2 no longer has.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis

from service.app import create_app
from service.settings import Settings
from tests.conftest import SEEDS

FUZZ_EXAMPLES = 1000
SLOW_EXAMPLES = 6_000
SLOW_MIN_CASES = 5_000

OPENAPI = create_app(Settings(corpus_dir=SEEDS)).openapi()


def _schema(max_examples: int) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(OPENAPI)
    # Fixed seed: the default suite sends the same cases every run; a failure reproduces.
    schema.config.seed = 20261122
    schema.config.generation.update(max_examples=max_examples)
    return schema


schema = _schema(FUZZ_EXAMPLES)
slow_schema = _schema(SLOW_EXAMPLES)


def _tally(request: pytest.FixtureRequest, name: str, at_least: int = 0) -> Iterator[Counter]:
    """Count the cases sent and the statuses answered; print one line at the end (and fail on too few)."""
    counts: Counter = Counter()
    yield counts
    cases = sum(n for key, n in counts.items() if key != "5xx")
    statuses = " ".join(f"{status}×{n}" for status, n in sorted((k, v) for k, v in counts.items() if isinstance(k, int)))
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print(f"\n{name}: {cases} cases, {counts['5xx']} answered 5xx; statuses {statuses}")
    assert cases >= at_least, f"{name} sent {cases} cases, fewer than {at_least}"


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Counter]:
    yield from _tally(request, "schemathesis")


@pytest.fixture(scope="module")
def slow_tally(request: pytest.FixtureRequest) -> Iterator[Counter]:
    yield from _tally(request, "schemathesis (slow)", at_least=SLOW_MIN_CASES)


def _call(case: schemathesis.Case, base_url: str, counts: Counter) -> None:
    response = case.call(base_url=base_url)
    counts[response.status_code] += 1
    counts["5xx"] += response.status_code >= 500
    # Every check schemathesis has is enabled by default; none is switched off here.
    case.validate_response(response)


def test_the_fuzzed_schema_is_the_served_one(client) -> None:
    assert client.get("/openapi.json").json() == OPENAPI


def test_every_check_schemathesis_has_is_on() -> None:
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    names = CHECKS.get_all_names()
    assert {"not_a_server_error", "response_schema_conformance", "negative_data_rejection", "unsupported_method"} <= set(names)
    assert [name for name in names if not getattr(schema.config.checks, name).enabled] == []


@schema.parametrize()
def test_every_operation_conforms_to_its_schema(case: schemathesis.Case, live_server: str, tally: Counter) -> None:
    _call(case, live_server, tally)


@pytest.mark.slow
@slow_schema.parametrize()
def test_every_operation_conforms_to_its_schema_at_length(case: schemathesis.Case, live_server: str, slow_tally: Counter) -> None:
    _call(case, live_server, slow_tally)
