"""Shared contracts of every zhiku service: settings, schemas, errors, database and task names."""
