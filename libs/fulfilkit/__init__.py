"""Shared plumbing of the platform's services: contracts, outbox, inbox, HTTP, settings."""
