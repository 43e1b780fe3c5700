"""Deciding what to run: job specs, job files, inventories, and the preflight that checks them."""
