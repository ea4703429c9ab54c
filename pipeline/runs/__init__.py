"""The night itself: planning a run, the per-trust tasks on Dask, the nightly fan-out, the cluster and the Airflow steps."""
