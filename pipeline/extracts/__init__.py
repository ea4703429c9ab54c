"""Stage 1 of the night: the extract contract, reading a trust's CSV text and its extract, validation by
Great Expectations, and the report a trust gets on its extract."""
