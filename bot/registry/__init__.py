"""The recipient register (from DTKS/DTSEN): households, programmes and disbursements,
their CSV import, the status, schedule and history answers, and the demo data set."""
