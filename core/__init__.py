"""Settings, the Temporal connection and the journey registry: imported by api/ and worker/,
which never import each other."""
