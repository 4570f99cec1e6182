"""Imaging use cases: the archive index (scans), search, and what DICOMweb serves."""
