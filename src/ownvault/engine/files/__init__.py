"""Files: put, get, list, tag, remove."""
