"""Stage 4: what a run publishes: the datasets and their pseudonyms, the commit, the catalog, the run report,
Data Docs, disclosure control, diffs between runs and pruning."""
