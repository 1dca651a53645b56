"""Providers that carry messages (Twilio, Kannel, the local sandbox): the outbox every
message goes out through, which provider carries which channel, and delivery reports.
The rest of the core never sees a provider's field names."""
