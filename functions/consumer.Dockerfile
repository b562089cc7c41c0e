# The consumer Lambda: the functions package with Kedro, and one Kedro project with everything
# it declares it needs, on the AWS Lambda Python base image. Build context: the repository root
# (template.yaml says so). See docs/image.md.
#   docker build -f functions/consumer.Dockerfile --build-arg KEDRO_PROJECT=path/to/project .
#   ... --build-arg PROJECT_REQUIREMENTS=requirements-lambda.txt   (a slimmer list, in the project)

# The Kedro project to bake in (a directory under the build context).
ARG KEDRO_PROJECT=local/example_project

# Stage 1: what to install: the service's consumer dependencies (service.txt), and those with the
# project's (requirements.txt: pyproject.toml [project].dependencies, requirements.txt,
# src/requirements.txt; or only PROJECT_REQUIREMENTS, a file relative to the project, when
# given). Only these files leave the stage, and Docker caches the next stage's layers by their
# content: a change to the code of the service or of the project does not reinstall anything.
FROM public.ecr.aws/lambda/python:3.11 AS requirements
ARG KEDRO_PROJECT
ARG PROJECT_REQUIREMENTS=""
WORKDIR /kedro-jobs-image
COPY infra/image/project_requirements.py ./
COPY pyproject.toml service/
COPY ${KEDRO_PROJECT} project/
RUN python project_requirements.py service --extra consumer > service.txt \
    && cp service.txt requirements.txt \
    && python project_requirements.py project --requirements "${PROJECT_REQUIREMENTS}" >> requirements.txt \
    && cat requirements.txt

# Stage 2: the packages, in a virtualenv with no pip in it, by a current pip from outside it
# (--python): older resolvers can backtrack for many minutes. First the service's own
# dependencies: a layer that depends only on service.txt, so Docker reuses it for any project
# and any change to a project's requirements. Then one pip resolution of everything, service and
# project together, against what is installed: the project's pins hold (pip replaces a version
# that does not satisfy them: one copy of each package), and a conflict fails the build with
# pip's message. Nothing is staged in the task root, where a folder would shadow (or be
# replaced by) an installed package of the same name.
FROM public.ecr.aws/lambda/python:3.11 AS dependencies
WORKDIR /kedro-jobs-image
COPY --from=requirements /kedro-jobs-image/service.txt ./
RUN python -m pip install --no-cache-dir --upgrade "pip>=25" \
    && python -m venv --without-pip packages \
    && python -m pip --python packages/bin/python install --no-cache-dir -r service.txt
COPY --from=requirements /kedro-jobs-image/requirements.txt ./
RUN python -m pip --python packages/bin/python install --no-cache-dir -r requirements.txt

# The image: the base image, the packages, the code; no build tools or staging left behind.
FROM public.ecr.aws/lambda/python:3.11
ARG KEDRO_PROJECT
COPY --from=dependencies /kedro-jobs-image/packages/lib/python3.11/site-packages ${LAMBDA_TASK_ROOT}

# Then the code. The project's own package is imported from its src/, next to its conf/.
# Lambda's disk is read-only, so compile now rather than on every cold start.
COPY functions/kedro_jobs ${LAMBDA_TASK_ROOT}/kedro_jobs
COPY ${KEDRO_PROJECT} ${LAMBDA_TASK_ROOT}/project
RUN python -m compileall -q "${LAMBDA_TASK_ROOT}/kedro_jobs" "${LAMBDA_TASK_ROOT}/project"

# Read-only disk but /tmp: console-only logging (shipped in the package), no telemetry.
ENV KEDRO_PROJECT_PATH=${LAMBDA_TASK_ROOT}/project \
    KEDRO_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    HOME=/tmp

CMD ["kedro_jobs.consumer.handler.handler"]
