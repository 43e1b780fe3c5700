"""The engine server: one per user, the long-running owner of the engine, serving clients on a private Unix socket."""
