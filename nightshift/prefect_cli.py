"""`prefect` CLI with one fix for Prefect 3.8 here: `python -m nightshift.prefect_cli ARGS`.

Prefect 3.8's client sends `"limit": null, "offset": null` when listing a work pool's
workers, and its server (with the FastAPI this environment pins) rejects that with 422. The
call is `prefect deploy`'s closing "is a worker online?" check, made after the first
deployment is applied, so a plain `prefect deploy --all` stops after one deployment. This
fills in the server's own defaults before the call; everything else is Prefect's CLI as is.
"""

from __future__ import annotations

import functools
import sys


def patch_worker_listing() -> None:
    from prefect.client.orchestration import PrefectClient

    original = PrefectClient.read_workers_for_work_pool
    if getattr(original, "_nightshift_patched", False):
        return

    @functools.wraps(original)
    async def read_workers_for_work_pool(
        self, work_pool_name, worker_filter=None, offset=None, limit=None
    ):  # noqa: ANN001, ANN202, E501
        return await original(
            self,
            work_pool_name,
            worker_filter,
            0 if offset is None else offset,
            200 if limit is None else limit,
        )

    read_workers_for_work_pool._nightshift_patched = True  # type: ignore[attr-defined]
    PrefectClient.read_workers_for_work_pool = read_workers_for_work_pool  # type: ignore[method-assign]


def main() -> None:
    patch_worker_listing()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    app()


if __name__ == "__main__":
    main()
