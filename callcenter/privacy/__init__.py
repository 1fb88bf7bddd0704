"""Personal data (UU No. 27/2022): retention, pseudonyms, a caller's export and erasure."""
