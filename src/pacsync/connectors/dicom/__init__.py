"""DICOM files and nodes: headers read, frames rendered, associations with PACS nodes."""
