"""The local stack: `make dev`, the moto server, the pollers, and the template's resources."""
