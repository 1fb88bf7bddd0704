"""The audit trail: who changed what, and who read or exported personal data, append-only."""
