"""The REST API v1 (FastAPI), served by ``pacsync serve``."""
