"""FHIR R4: resources built from pacsync's canonical records."""
