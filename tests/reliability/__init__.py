"""Reliability and security suite (issue 6): hostile input, crashes, concurrency, database loss."""
