"""Files on disk and NAS shares: archive roots walked, blobs stored."""
