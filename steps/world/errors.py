"""What building or using a world can refuse."""


class WorldError(Exception):
    """A world cannot be built or served here; the message says why."""


class EvidenceRefused(WorldError):
    """`write_evidence` would have written outside the world (or through a symlink)."""
