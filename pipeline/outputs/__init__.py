"""Stage 3: the files a trust's operational folder holds (the lists as CSV, the transfer workbook, the README)."""
