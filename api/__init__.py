"""The FastAPI service: routers per journey, API-key auth, read models."""
