# The project image: the `trp` CLI, the DAGs and the package, for Airflow, the Dask workers and the upload
# service alike (one image, so the scheduler, workers and DAG code never disagree on versions).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    AIRFLOW_HOME=/opt/airflow AIRFLOW__CORE__DAGS_FOLDER=/opt/trp/dags AIRFLOW__CORE__LOAD_EXAMPLES=False

RUN useradd --create-home --uid 50000 trp && mkdir -p /opt/airflow /opt/trp && chown -R trp /opt/airflow
WORKDIR /opt/trp
COPY pyproject.toml README.md constraints.txt ./
COPY pipeline ./pipeline
COPY expectations ./expectations
COPY dags ./dags
RUN pip install --no-cache-dir -c constraints.txt . psycopg2-binary
ENV TRP_EXPECTATIONS=/opt/trp/expectations

USER trp
EXPOSE 8000 8080 8786 8787
CMD ["trp", "--help"]
