"""Tamper evidence for the log (issue 10, section 2): RFC 6962 Merkle trees over the log's
events, a hash chain per log partition, and the signed checkpoints that bind both."""
