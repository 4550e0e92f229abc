"""Data: reading files and in-memory tables, splits, loading, the label audit, inspection."""
