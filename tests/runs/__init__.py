"""Tests of the night's runs, the cluster and Airflow."""
