"""Uploads by trust data officers: the upload service and its page, the trusts' tokens, and the command-line
client."""
