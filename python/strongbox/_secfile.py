"""strongbox.SecFile: pyFileSec's workflow on age files (filled in below)."""


class SecFile:  # replaced by the full implementation
    pass
