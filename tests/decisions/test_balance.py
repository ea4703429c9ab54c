"""Workforce balance's sums: grouped by array, the same floats as adding the rows up one by one."""

from collections import defaultdict

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decisions.balance import group_sums


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["NPS", "CRC"]),
            st.sampled_from(["PO", "PSO", "SPO", None]),
            st.floats(0, 40, allow_nan=False),
        ),
        max_size=40,
    )
)
def test_sums_are_the_row_by_row_sums_to_the_last_bit(rows):
    df = pd.DataFrame(rows, columns=["side", "grade", "fte"]).astype({"side": "str", "grade": "str"})
    loop, count = defaultdict(float), defaultdict(int)
    for side, grade, fte in rows:
        loop[(side, grade)] += fte
        count[(side, grade)] += 1
    got = {(s, None if pd.isna(g) else g): v for (s, g), v in group_sums(df, ["side", "grade"], "fte").items()}
    assert got == dict(loop)
    heads = {(s, None if pd.isna(g) else g): v for (s, g), v in group_sums(df, ["side", "grade"], None).items()}
    assert heads == dict(count)
