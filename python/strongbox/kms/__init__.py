"""strongbox.kms (in progress)."""
