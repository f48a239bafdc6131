"""Run the platform on one machine without Docker: see deploy/local/README.md."""
