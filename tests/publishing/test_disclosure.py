"""Small-count suppression: nothing under the threshold shows, and no total gives a hidden cell away."""

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.publishing.disclosure import suppressed_table, suppressed_values, suppression_mask

counts = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda cols: st.lists(
            st.lists(st.one_of(st.just(0), st.integers(1, 12), st.integers(13, 500)), min_size=cols, max_size=cols),
            min_size=rows,
            max_size=rows,
        )
    )
)


@given(counts, st.integers(2, 15))
def test_no_small_count_shows_and_no_line_has_a_single_hidden_cell_its_total_reveals(rows, threshold):
    table = pd.DataFrame(rows, index=[f"r{i}" for i in range(len(rows))])
    shown = suppressed_table(table, threshold).to_numpy()
    for cell in shown.ravel():
        assert cell == "[c]" or int(cell) == 0 or int(cell) >= threshold
    for line in [*shown, *shown.T]:  # each row and column, its total last
        assert (line == "[c]").sum() != 1, line
    assert (suppression_mask(table, threshold).to_numpy() == (shown[:-1, :-1] == "[c]")).all()


def test_secondary_suppression_hides_the_smallest_other_cell():
    table = pd.DataFrame({"NPS": [3, 40, 50], "CRC": [25, 12, 60]}, index=["A", "B", "C"])
    assert suppression_mask(table, 10).to_numpy().tolist() == [[True, True], [True, True], [False, False]]
    assert suppressed_values(pd.Series([5, 20, 30, 0]), 10).isna().tolist() == [True, True, False, False]
    assert suppressed_table(table, 10).loc["Total"].tolist() == ["93", "97", "190"]
    one_column = pd.DataFrame({"n": [1, 2]})  # 1 is small; 2 and its total go too; 3 = 1 + 2 shows
    assert suppressed_table(one_column, 2).to_numpy().tolist() == [["[c]", "[c]"], ["[c]", "[c]"], ["3", "3"]]
