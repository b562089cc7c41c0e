# The consumer Lambda: the functions package with Kedro, and one Kedro project, on the AWS
# Lambda Python base image. Build context: the repository root (template.yaml says so).
#   docker build -f functions/consumer.Dockerfile --build-arg KEDRO_PROJECT=path/to/project .
FROM public.ecr.aws/lambda/python:3.11

# The Kedro project to bake in (a directory under the build context).
ARG KEDRO_PROJECT=local/example_project

# Dependencies first: this layer is reused while only code changes.
COPY pyproject.toml README.md ${LAMBDA_TASK_ROOT}/build/
COPY functions/kedro_jobs ${LAMBDA_TASK_ROOT}/build/functions/kedro_jobs
RUN python -m pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" "${LAMBDA_TASK_ROOT}/build[consumer]" \
    && rm -rf "${LAMBDA_TASK_ROOT}/build"

# The project, with its own requirements if it has any.
COPY ${KEDRO_PROJECT} ${LAMBDA_TASK_ROOT}/project
RUN if [ -f "${LAMBDA_TASK_ROOT}/project/requirements.txt" ]; then \
      python -m pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" -r "${LAMBDA_TASK_ROOT}/project/requirements.txt"; \
    fi

# Read-only disk but /tmp: console-only logging (shipped in the package), no telemetry.
ENV KEDRO_PROJECT_PATH=${LAMBDA_TASK_ROOT}/project \
    KEDRO_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    HOME=/tmp

CMD ["kedro_jobs.consumer.handler.handler"]
