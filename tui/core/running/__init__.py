"""Running one attempt: the supervisor process, its process tree, and the results its events build."""
