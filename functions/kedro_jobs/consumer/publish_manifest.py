"""`python -m kedro_jobs.consumer.publish_manifest`: publish the Kedro project's pipeline
manifest to the artifacts bucket (at deploy time, or by `make dev`)."""

from __future__ import annotations

import argparse
import json
import sys

from kedro_jobs.core.artifacts import ArtifactStore
from kedro_jobs.core.manifest import Manifest, ManifestReader
from kedro_jobs.core.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", help="Kedro project path (default: KEDRO_PROJECT_PATH)")
    parser.add_argument("--bucket", help="artifacts bucket (default: ARTIFACTS_BUCKET)")
    parser.add_argument("--print", action="store_true", help="print the manifest, publish nothing")
    args = parser.parse_args(argv)

    from pathlib import Path

    from kedro_jobs.runner.project import project_path_from_env
    from kedro_jobs.runner.runner import KedroRunner

    project = Path(args.project) if args.project else project_path_from_env()
    manifest = Manifest.model_validate(KedroRunner(project, isolation="inline").manifest())
    if args.print:
        sys.stdout.write(manifest.model_dump_json(indent=2) + "\n")
        return 0
    store = ArtifactStore(args.bucket or get_settings().artifacts_bucket)
    location = ManifestReader(store).publish(manifest)
    sys.stdout.write(
        json.dumps({"published": location, "pipelines": sorted(manifest.pipelines)}) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
