"""Stage 1 of the night: the extract contract, reading a trust's CSV text, validation by Great Expectations, arrival checks and the report a trust gets on its extract."""
