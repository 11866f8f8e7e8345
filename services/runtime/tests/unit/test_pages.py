"""Cursors: a position goes out opaque and comes back typed; anything else is a 422 naming the cursor."""

from datetime import date, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from ejsika_runtime import pages
from ejsika_runtime.problems import Problem


def test_a_position_comes_back_with_its_types():
    moment = datetime(2026, 11, 28, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    ident = uuid4()
    cursor = pages.encode(moment, ident, date(2026, 11, 1), "jscm", 42)
    assert pages.decode(cursor, datetime, type(ident), date, str, int) == (moment, ident, date(2026, 11, 1), "jscm", 42)
    assert pages.decode(None, int) is None and pages.decode("", int) is None


@pytest.mark.parametrize("cursor", [
    "not-base64!", pages.encode("x"), pages.encode(1, 2), pages.encode(True), pages.encode("2026-11-28T09:30:00"),
    pages.encode("not-a-uuid"), pages.encode("2026-13-01"),
])
@pytest.mark.parametrize("kinds", [(int,), (datetime,), (type(uuid4()),), (date,)])
def test_anything_but_a_position_of_the_right_kinds_is_refused_as_the_cursor(cursor, kinds):
    try:
        pages.decode(cursor, *kinds)
    except Problem as problem:
        assert problem.status == 422 and problem.errors[0].field == "query.cursor"
    else:
        pytest.fail("a cursor that is no position of these kinds was accepted")
