"""Disbursement notices: planning what is due, the outbox and its dispatcher, pacing,
operator commands, and the scheduler process that runs them (and the follow-ups)."""
