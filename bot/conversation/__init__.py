"""A citizen's conversation: inbound messages stored first, SMS keywords, the Rasa
client, the core's own replies, the flood limit, STOP/MULAI, follow-ups of messages
Rasa could not answer, and the retention of chat logs. Contacts and messages live here."""
