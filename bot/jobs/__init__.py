"""Generation jobs: spec, repository, scheduler, worker, progress, publisher."""
