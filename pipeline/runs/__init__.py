"""The night itself: planning a run, the per-trust tasks on Dask, the nightly fan-out, the cluster, the
Airflow steps, and the check of an extract as it arrives."""
