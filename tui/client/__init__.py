"""The client library (no Textual): talks to the engine server and keeps a mirror of its jobs."""
