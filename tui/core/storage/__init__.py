"""What is kept on disk: run and attempt directories, history records, the audit trail, private dirs."""
