"""Knowledge of the npm ecosystem shared by the step kinds: semver, lockfiles, manifests, caches."""
